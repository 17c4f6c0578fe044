"""TrackML per-hit truth weights (the challenge's scoring weights), normalised to sum 1 per event.

Definition of the official TrackML library (LAL/trackml-library, ``trackml/weights.py``:
``weight_hits``, ``weight_order``, ``weight_pt``), reimplemented vectorised:

* order weight: hits of a particle are ranked by |tz - vz| (distance along z from its vertex; pandas
  "average" rank minus 1, truncated to an integer); a particle with ``nhits`` < 4 hits gets 0; longer
  tracks use the proposal [10, 8, 6, 5, 3, 3, 3, 5, 6] stretched over ``min(nhits, 20)`` positions by
  linear interpolation and normalised to sum 1 per track (first and last hits weigh most); ranks >= 20
  get 0;
* pT weight: 0.2 below 0.5 GeV, rising linearly to 1 at 3 GeV, 1 above (0 below 0.05 GeV);
* noise hits (particle_id 0) and hits of particles missing from the particle table weigh 0;
* weight = order weight × pT weight, divided by its event sum (all zero if nothing qualifies).

``tests/test_trackml_datagen.py`` checks the result against the official library's own output on a
partx event (fixture made outside the project by ``tests/fixtures/make_trackml_weights_reference.py``).
The current library (``weight_hits_phase1``) takes nhits from particles.csv; ours counts the truth hits,
the same number in files whose ``nhits`` is consistent (ours are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partx.datagen.trackml.schema import NOISE_ID

ORDER_PROPOSAL = np.array([10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0])
ORDER_MIN_HITS = 4
ORDER_MAX_HITS = 20


def order_matrix() -> np.ndarray:
    """(21, 20) weights indexed by (nhits, ihit); rows below ORDER_MIN_HITS are zero."""
    w = np.zeros((ORDER_MAX_HITS + 1, ORDER_MAX_HITS))
    k = len(ORDER_PROPOSAL)
    for n in range(ORDER_MIN_HITS, ORDER_MAX_HITS + 1):
        row = np.interp(np.arange(n), np.arange(k) * (n - 1) / (k - 1), ORDER_PROPOSAL)
        w[n, :n] = row / row.sum()
    return w


ORDER_MATRIX = order_matrix()


def weight_pt(pt: np.ndarray) -> np.ndarray:
    """pT-dependent weight (pt in GeV)."""
    return np.interp(pt, [0.05, 0.5, 3.0], [0.2, 0.2, 1.0], left=0.0, right=1.0)


def truth_weights(hit_particle: np.ndarray, tz: np.ndarray, particles: pd.DataFrame) -> np.ndarray:
    """Per-hit weights (h,) float64 summing to 1 (or all 0).

    Args:
        hit_particle: (h,) particle_id of each hit (0 = noise).
        tz: (h,) true z of each hit (mm).
        particles: table with particle_id, vz, px, py.
    """
    h = len(hit_particle)
    if h == 0:
        return np.zeros(0)
    pidx = pd.Index(particles["particle_id"].to_numpy())
    loc = pidx.get_indexer(hit_particle)
    known = (loc >= 0) & (hit_particle != NOISE_ID)
    pt = np.hypot(particles["px"].to_numpy(np.float64), particles["py"].to_numpy(np.float64))
    vz = particles["vz"].to_numpy(np.float64)
    wpt = np.where(known, weight_pt(pt[np.clip(loc, 0, None)]), 0.0)
    dvz = np.abs(tz.astype(np.float64) - np.where(known, vz[np.clip(loc, 0, None)], 0.0))
    df = pd.DataFrame({"p": hit_particle, "d": dvz})
    g = df.groupby("p")["d"]
    nhits = g.transform("size").to_numpy()
    ihit = (g.rank(method="average").to_numpy() - 1).astype(np.int64)  # truncation as in the reference
    nh = np.minimum(nhits, ORDER_MAX_HITS)
    ok = known & (nhits >= ORDER_MIN_HITS) & (ihit < ORDER_MAX_HITS) & (ihit < nh)
    worder = np.where(ok, ORDER_MATRIX[np.where(ok, nh, 0), np.where(ok, ihit, 0)], 0.0)
    w = wpt * worder
    total = w.sum()
    return w / total if total > 0 else w
