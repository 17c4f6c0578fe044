"""phi sectors of an event, cut as HEPT cuts them.

Reference: Graph-COM/HEPT ``data/tracking/raw/preprocessing/point_cloud_builder.py``,
``PointCloudBuilder.sector_hits`` with the settings of ``data/tracking/raw/build_point_clouds.py``
(``sector_ds=1.3``, ``sector_di=0``). For sector s of n: rotate (u, v) by -2 s pi / n; the *core* sector is
|v_r| < slope * u_r, u_r > 0, the *extended* sector |v_r| < 1.3 * slope * u_r + di, u_r > 0, with
``slope = arctan(pi / n)`` (HEPT takes the arctan of the half-angle, so the core half-angle is
arctan(arctan(pi/n)), a little under pi/n). A sector holds every hit of its extended region; each hit is
labelled with the sector of its particle: s if at least half of the particle's pixel hits (counted over
the whole event) lie in the core of s, else -1 (noise is always -1). With 1 sector the whole event is
kept and labelled 0.

Coverage: the extended half-angle arctan(1.3 arctan(pi/n)) exceeds pi/n for n >= 6, so every hit lies in
at least one sector; for n = 2 (52.5 deg of 90) and n = 3 (46.4 deg of 60) HEPT's formula leaves phi gaps,
and hits there are in no sector (``coverage_half_angle``).
"""

from __future__ import annotations

import numpy as np

from partx.readers.trackml.event import EventHits

#: HEPT's extended-sector slope factor and intercept (build_point_clouds.py)
SECTOR_DS = 1.3
SECTOR_DI = 0.0

#: dataset name -> number of phi sectors (seed paper: 1, 2, 3, 6, 10, 20)
SETS: dict[str, int] = {"full": 1, "20k": 2, "15k": 3, "10k": 6, "6k": 10, "3k": 20}
#: padded length per set in data/TrackML/TrackML_{set}.yaml: ~1.1x the longest row of partx's generated
#: mu = 200 events (~99k pixel hits per event, up to 110k; real TrackML ~57k) -- see docs/trackml_data.md
SET_LENGTHS: dict[str, int] = {"full": 80000, "20k": 25000, "15k": 22000, "10k": 16000, "6k": 11000, "3k": 6000}


def coverage_half_angle(n_sectors: int, ds: float = SECTOR_DS) -> float:
    """Half opening angle (rad) of one extended sector (di = 0)."""
    return float(np.arctan(ds * np.arctan(np.pi / n_sectors)))


def sector_hits(ev: EventHits, n_sectors: int, ds: float = SECTOR_DS,
                di: float = SECTOR_DI) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut an event into HEPT's extended phi sectors.

    Args:
        ev: the event's per-hit table.
        n_sectors: number of sectors (1: the whole event).
        ds, di: extended-sector slope factor and intercept.

    Returns:
        one ``(rows, label)`` per sector s = 0..n-1: ``rows`` indexes ``ev``'s hits in the sector (in event
        order), ``label`` (len(rows),) int64 is the particle's core sector (s) or -1.
    """
    n = len(ev)
    if n_sectors == 1:
        return [(np.arange(n), np.zeros(n, dtype=np.int64))]
    u, v = ev.feature("u"), ev.feature("v")
    pid = ev.particle_id
    upid, inverse = np.unique(pid, return_inverse=True)
    theta = np.pi / n_sectors
    slope = np.arctan(theta)
    pid_hits = ev.n_hits[np.unique(inverse, return_index=True)[1]]  # pixel hits per particle, whole event
    out = []
    for s in range(n_sectors):
        c, sn = np.cos(2 * s * theta), np.sin(2 * s * theta)
        ur = u * c - v * sn
        vr = u * sn + v * c
        core = (vr > -slope * ur) & (vr < slope * ur) & (ur > 0)
        in_core = np.bincount(inverse[core], minlength=len(upid))
        majority = (in_core / pid_hits >= 0.5) & (upid != 0)
        ext = (vr > -ds * slope * ur - di) & (vr < ds * slope * ur + di) & (ur > 0)
        rows = np.nonzero(ext)[0]
        out.append((rows, np.where(majority[inverse[rows]], s, -1).astype(np.int64)))
    return out
