"""A tiny hand-made TrackML-format event (+ detectors.csv) for the preprocessing tests and fixture.

Tracks from near the origin (straight in r-z, bent in phi as in a 2 T field) cross a small detector with TrackML's volume / layer numbering
(pixel barrel 8 at r = 32, 72, 116, 172 mm; pixel endcaps 7 / 9 with 7 disks; one strip barrel layer,
volume 13, which preprocessing must drop). Each layer has 8 planar modules in phi; a hit's cells are a
contiguous block of pixels. Hit ids increase with (volume, layer, module), as in TrackML files.
Not a physics simulation: only the file format and the geometry bookkeeping matter here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BARREL = {(8, 2): 32.0, (8, 4): 72.0, (8, 6): 116.0, (8, 8): 172.0, (13, 2): 260.0}
DISKS = {**{(9, 2 * i + 2): z for i, z in enumerate((600, 700, 820, 960, 1100, 1300, 1500))},
         **{(7, 14 - 2 * i): -z for i, z in enumerate((600, 700, 820, 960, 1100, 1300, 1500))}}
N_MOD = 8


def _module_frame(vol: int, lay: int, mod: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre, rotation with columns u, v, w) of module ``mod`` (1..8) of a layer."""
    phi = 2 * np.pi * (mod - 0.5) / N_MOD
    radial = np.array([np.cos(phi), np.sin(phi), 0.0])
    tangent = np.array([-np.sin(phi), np.cos(phi), 0.0])
    zax = np.array([0.0, 0.0, 1.0])
    if (vol, lay) in BARREL:
        c = BARREL[(vol, lay)] * radial
        rot = np.stack([tangent, zax, radial], axis=1)
    else:
        c = 100.0 * radial + DISKS[(vol, lay)] * zax
        rot = np.stack([tangent, radial, zax if vol == 9 else -zax], axis=1) * ([1, 1, 1] if vol == 9 else [1, -1, 1])
    return c, rot


def detectors() -> pd.DataFrame:
    rows = []
    for (vol, lay) in sorted(list(BARREL) + list(DISKS)):
        for mod in range(1, N_MOD + 1):
            c, rot = _module_frame(vol, lay, mod)
            strip = vol == 13
            rows.append({"volume_id": vol, "layer_id": lay, "module_id": mod, "cx": c[0], "cy": c[1], "cz": c[2],
                         **{f"rot_{a}{b}": rot[i, j] for i, a in enumerate("xyz") for j, b in enumerate("uvw")},
                         "module_t": 0.3 if strip else 0.15, "module_minhu": 8.4, "module_maxhu": 8.4,
                         "module_hv": 36.0, "pitch_u": 0.08 if strip else 0.05, "pitch_v": 1.2 if strip else 0.05625})
    return pd.DataFrame(rows)


def make_event(seed: int, n_particles: int = 30, n_noise: int = 6) -> dict[str, pd.DataFrame]:
    """hits / cells / particles / truth of one event with TrackML's columns."""
    rng = np.random.default_rng(seed)
    recs = []
    parts = []
    for i in range(n_particles):
        pid = (seed + 1) * 10 ** 15 + (i + 1) * 2 ** 20  # TrackML-like 64-bit ids
        eta = rng.uniform(-3.2, 3.2)
        phi = rng.uniform(-np.pi, np.pi)
        pt = rng.exponential(1.5) + 0.2
        d = np.array([np.cos(phi), np.sin(phi), np.sinh(eta)])
        v0 = np.array([0.0, 0.0, rng.normal(0, 30.0)])
        parts.append({"particle_id": pid, "vx": 0.0, "vy": 0.0, "vz": v0[2], "px": pt * d[0], "py": pt * d[1],
                      "pz": pt * d[2], "q": int(rng.choice([-1, 1])), "nhits": 0})
        keep = rng.uniform() < 0.9  # some particles lose hits (inefficiency)
        for (vol, lay), rad in BARREL.items():
            t = rad  # straight line: r = t
            p = v0 + t * d
            if abs(p[2]) < 491 and (keep or rng.uniform() < 0.3):
                recs.append((vol, lay, p, pid, pt, d))
        for (vol, lay), zd in DISKS.items():
            if np.sign(zd) != np.sign(d[2]):
                continue
            t = (zd - v0[2]) / d[2]
            p = v0 + t * d
            r = np.hypot(p[0], p[1])
            if 30 < r < 176 and (keep or rng.uniform() < 0.3):
                recs.append((vol, lay, p, pid, pt, d))
    for _ in range(n_noise):
        (vol, lay), rad = list(BARREL.items())[rng.integers(0, 4)]
        ph = rng.uniform(-np.pi, np.pi)
        recs.append((vol, lay, np.array([rad * np.cos(ph), rad * np.sin(ph), rng.uniform(-400, 400)]), 0, 0.0, None))
    rows = []
    for vol, lay, p, pid, pt, d in recs:
        if pid:  # bend in the 2 T field: phi(r) ~ phi0 - q 0.3 B r / (2 pT), r in m (helix, small-angle)
            q = next(x["q"] for x in parts if x["particle_id"] == pid)
            r = np.hypot(p[0], p[1])
            dphi = -q * 0.3 * 2.0 * (r / 1000.0) / (2 * pt)
            c, s_ = np.cos(dphi), np.sin(dphi)
            p = np.array([c * p[0] - s_ * p[1], s_ * p[0] + c * p[1], p[2]])
        mod = int(np.floor((np.arctan2(p[1], p[0]) % (2 * np.pi)) / (2 * np.pi / N_MOD))) + 1
        rows.append((vol, lay, mod, p, pid, d))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    hits, truth, cells = [], [], []
    for hid, (vol, lay, mod, p, pid, d) in enumerate(rows, start=1):
        hits.append({"hit_id": hid, "x": p[0], "y": p[1], "z": p[2], "volume_id": vol, "layer_id": lay, "module_id": mod})
        truth.append({"hit_id": hid, "particle_id": pid, "tx": p[0], "ty": p[1], "tz": p[2],
                      "tpx": 0.0 if d is None else d[0], "tpy": 0.0 if d is None else d[1],
                      "tpz": 0.0 if d is None else d[2], "weight": 0.0})
        nu, nv = int(rng.integers(1, 4)), int(rng.integers(1, 6))
        u0, v0 = int(rng.integers(0, 300)), int(rng.integers(0, 1000))
        for a in range(nu):
            for b in range(nv):
                if rng.uniform() < 0.15 and (a, b) != (0, 0) and (a, b) != (nu - 1, nv - 1):
                    continue  # cells missing inside the block: the span, not the count, sets lx / ly
                cells.append({"hit_id": hid, "ch0": u0 + a, "ch1": v0 + b, "value": float(rng.uniform(0.05, 1.0))})
    truth = pd.DataFrame(truth)
    w = (truth.particle_id > 0).astype(float)
    truth["weight"] = w / w.sum()
    particles = pd.DataFrame(parts)
    particles["nhits"] = particles.particle_id.map(truth.particle_id.value_counts()).fillna(0).astype(int)
    return {"hits": pd.DataFrame(hits), "cells": pd.DataFrame(cells), "particles": particles, "truth": truth}


def write_events(directory: str | Path, event_ids: list[int], n_particles: int = 30) -> Path:
    """Write events + detectors.csv into ``directory``; return it."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    detectors().to_csv(d / "detectors.csv", index=False)
    for e in event_ids:
        for part, df in make_event(e, n_particles).items():
            df.to_csv(d / f"event{e:09d}-{part}.csv", index=False)
    return d
