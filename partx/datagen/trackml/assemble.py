"""One simulated event -> the four TrackML tables (hits, cells, particles, truth).

* hits: measured positions (cell-charge centroid on the module mid-plane, ``cells.make_cells``), sorted
  like the real files by (volume_id, layer_id, module_id), ``hit_id`` = 1..H in that order;
* truth: the exact crossing point and momentum there, the particle id (0 for noise) and the TrackML
  weight (``weights.truth_weights``);
* particles: every kept charged particle at its vertex, ``nhits`` = its number of hits (0 allowed, as
  in the real files);
* cells: sorted by hit_id.

Noise (``noise_fraction`` F > 0): F of the final hits are noise, each on a module drawn uniformly,
at a uniform point inside it, with one cell of a perpendicular MIP's charge; truth particle_id 0,
momentum 0, weight 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partx.datagen.trackml.cells import DEDX, make_cells
from partx.datagen.trackml.geometry import Detector
from partx.datagen.trackml.propagate import Crossings, Particles
from partx.datagen.trackml.weights import truth_weights
from partx.datagen.trackml.writer import typed


def _noise(det: Detector, n: int, rng: np.random.Generator):
    m = rng.integers(0, len(det.t), n)
    v = rng.uniform(-1, 1, n) * det.hv[m]
    u = rng.uniform(-1, 1, n) * det.half_u(m, v)
    loc = np.stack([u, v, np.zeros(n)], 1)
    c0 = np.floor((u + det.maxhu[m]) / det.pitch[m, 0]).astype(np.int64)
    c1 = np.floor((v + det.hv[m]) / det.pitch[m, 1]).astype(np.int64)
    cu = -det.maxhu[m] + (c0 + 0.5) * det.pitch[m, 0]
    cv = -det.hv[m] + (c1 + 0.5) * det.pitch[m, 1]
    # the last cell of a row may stick out of the module (size not a multiple of the pitch): stay inside
    cv = np.clip(cv, -det.hv[m], det.hv[m])
    cu = np.clip(cu, -det.half_u(m, cv), det.half_u(m, cv))
    return m, loc, np.stack([cu, cv], 1), c0, c1, det.t[m] * DEDX


def assemble(det: Detector, particles: Particles, particle_id: np.ndarray, cr: Crossings,
             rng: np.random.Generator, noise_fraction: float = 0.0) -> dict[str, pd.DataFrame]:
    """Build the four typed TrackML tables of one event.

    Args:
        det: the detector.
        particles: the propagated particles (vertex, momentum, charge).
        particle_id: (n,) their TrackML ids.
        cr: module crossings from ``Propagator.run``.
        rng: random generator (noise, tie-breaking).
        noise_fraction: fraction of noise among the final hits (0 <= F < 1).
    """
    cells, meas = make_cells(det, cr.module, cr.local, cr.dir_local)
    h = len(cr.module)
    module = cr.module
    meas_loc = np.concatenate([meas, np.zeros((h, 1))], 1)
    tpos, tmom, pid = cr.pos, cr.mom, particle_id[cr.particle]
    c_hit, c0, c1, cval = cells.hit, cells.ch0, cells.ch1, cells.value
    n_noise = int(round(noise_fraction / (1.0 - noise_fraction) * h)) if noise_fraction > 0 else 0
    if n_noise:
        nm, nloc, nmeas, nc0, nc1, nval = _noise(det, n_noise, rng)
        module = np.concatenate([module, nm])
        meas_loc = np.concatenate([meas_loc, np.concatenate([nmeas, np.zeros((n_noise, 1))], 1)])
        tpos = np.concatenate([tpos, det.to_global(nm, nloc)])
        tmom = np.concatenate([tmom, np.zeros((n_noise, 3))])
        pid = np.concatenate([pid, np.zeros(n_noise, np.int64)])
        c_hit = np.concatenate([c_hit, h + np.arange(n_noise)])
        c0, c1, cval = np.concatenate([c0, nc0]), np.concatenate([c1, nc1]), np.concatenate([cval, nval])
    n_all = len(module)
    pos = det.to_global(module, meas_loc) if n_all else np.zeros((0, 3))
    ids = det.ids[module] if n_all else np.zeros((0, 3), np.int32)
    # hit_id order: by (volume, layer, module) like the real files, ties in random order
    order = np.lexsort((rng.random(n_all), ids[:, 2], ids[:, 1], ids[:, 0]))
    hit_id = np.empty(n_all, np.int64)
    hit_id[order] = np.arange(1, n_all + 1)

    nhits = pd.Series(pid[pid != 0]).value_counts()
    part = pd.DataFrame({
        "particle_id": particle_id, "vx": particles.vx, "vy": particles.vy, "vz": particles.vz,
        "px": particles.px, "py": particles.py, "pz": particles.pz, "q": np.rint(particles.q),
        "nhits": nhits.reindex(particle_id, fill_value=0).to_numpy(),
    })
    weight = truth_weights(pid, tpos[:, 2], part)
    hits = typed("hits", {"hit_id": hit_id[order], "x": pos[order, 0], "y": pos[order, 1], "z": pos[order, 2],
                          "volume_id": ids[order, 0], "layer_id": ids[order, 1], "module_id": ids[order, 2]})
    truth = typed("truth", {"hit_id": hit_id[order], "particle_id": pid[order], "tx": tpos[order, 0],
                            "ty": tpos[order, 1], "tz": tpos[order, 2], "tpx": tmom[order, 0],
                            "tpy": tmom[order, 1], "tpz": tmom[order, 2], "weight": weight[order]})
    co = np.lexsort((c1, c0, hit_id[c_hit]))
    cells_df = typed("cells", {"hit_id": hit_id[c_hit][co], "ch0": c0[co], "ch1": c1[co], "value": cval[co]})
    return {"hits": hits, "cells": cells_df, "particles": typed("particles", part), "truth": truth}
