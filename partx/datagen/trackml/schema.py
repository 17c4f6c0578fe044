"""TrackML CSV columns and dtypes: the single source of truth for the reader, the writer and the tests.

Column names and dtypes follow the official TrackML library (LAL/trackml-library, ``trackml/dataset.py``:
``HITS_DTYPES``, ``CELLS_DTYPES``, ``PARTICLES_DTYPES``, ``TRUTH_DTYPES``), i.e. the Kaggle
accuracy-phase files. The later throughput-phase files add ``particle_type`` to the particles; the reader
accepts it (``OPTIONAL``) and the writer does not produce it. The ``detectors.csv`` column list is the one
read by GeantV's TrackML geometry (``TrackMLGeom::GetRecord``): module centre ``c``, rotation ``rot``
(local u, v, w axes as matrix columns: ``global = c + rot @ (u, v, w)``), thickness ``module_t``,
trapezoid half-lengths in u at -hv / +hv (``module_minhu`` / ``module_maxhu``), half-length in v
(``module_hv``) and the cell pitches (``pitch_u``, ``pitch_v``), all in mm.
"""

from __future__ import annotations

import numpy as np

PARTS = ("hits", "cells", "particles", "truth")

#: part -> {column: dtype}, in file column order
DTYPES: dict[str, dict[str, np.dtype]] = {
    "hits": {
        "hit_id": np.dtype("i4"), "x": np.dtype("f4"), "y": np.dtype("f4"), "z": np.dtype("f4"),
        "volume_id": np.dtype("i4"), "layer_id": np.dtype("i4"), "module_id": np.dtype("i4"),
    },
    "cells": {"hit_id": np.dtype("i4"), "ch0": np.dtype("i4"), "ch1": np.dtype("i4"), "value": np.dtype("f4")},
    "particles": {
        "particle_id": np.dtype("i8"), "vx": np.dtype("f4"), "vy": np.dtype("f4"), "vz": np.dtype("f4"),
        "px": np.dtype("f4"), "py": np.dtype("f4"), "pz": np.dtype("f4"), "q": np.dtype("i4"), "nhits": np.dtype("i4"),
    },
    "truth": {
        "hit_id": np.dtype("i4"), "particle_id": np.dtype("i8"), "tx": np.dtype("f4"), "ty": np.dtype("f4"),
        "tz": np.dtype("f4"), "tpx": np.dtype("f4"), "tpy": np.dtype("f4"), "tpz": np.dtype("f4"),
        "weight": np.dtype("f4"),
    },
}

#: columns a real file may carry beyond ``DTYPES`` (throughput-phase particles), with their dtype
OPTIONAL: dict[str, dict[str, np.dtype]] = {"particles": {"particle_type": np.dtype("i4")}}

_ROT = [f"rot_{a}{b}" for a in "xyz" for b in "uvw"]
DETECTOR_DTYPES: dict[str, np.dtype] = {
    "volume_id": np.dtype("i4"), "layer_id": np.dtype("i4"), "module_id": np.dtype("i4"),
    **{c: np.dtype("f8") for c in ("cx", "cy", "cz", *_ROT, "module_t", "module_minhu", "module_maxhu",
                                   "module_hv", "pitch_u", "pitch_v")},
}
ROT_COLUMNS = tuple(_ROT)

#: particle_id of noise hits in truth.csv
NOISE_ID = 0

#: pixel volumes (HEPT keeps only these), strip volumes
PIXEL_VOLUMES = (7, 8, 9)
STRIP_VOLUMES = (12, 13, 14, 16, 17, 18)


def event_prefix(event_id: int) -> str:
    """File prefix of one event: ``event%09d``."""
    return f"event{event_id:09d}"
