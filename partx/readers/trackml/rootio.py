"""The weaver-readable output: ROOT files with one tree ``Events``, one row per event or phi sector.

Per-hit arrays are jagged branches sharing one counter ``nhit`` (uproot ``mktree`` + ``extend`` with an
awkward record ``hit``, so a classic TTree, never RNTuple). Branches:

* per row: ``event_id`` (int64), ``sector_id`` (int32: s of n sectors, 0 for whole events), ``n_sectors``
  (int32), ``nhit`` (counter).
* features (float32, HEPT's x, scaled): ``hit_r`` (r/1000), ``hit_phi`` (phi/pi), ``hit_z`` (z/1000),
  ``hit_eta_rz``, ``hit_u`` (u*1000), ``hit_v`` (v*1000), ``hit_charge_frac``, ``hit_leta``, ``hit_lphi``,
  ``hit_lx``, ``hit_ly``, ``hit_lz``, ``hit_geta``, ``hit_gphi``, ``hit_layer`` (layer/10).
* coords (float32): ``hit_pos_eta``, ``hit_pos_phi`` (HEPT's pos: eta from r, z and phi in rad); HEPT's
  6-d coords are (hit_pos_eta, hit_pos_phi, hit_r, hit_phi, hit_z, hit_eta_rz).
* truth: ``hit_particle_id`` (int64, 0 noise), ``hit_particle_index`` (int32: 1..P per event in particle_id
  order, 0 noise; exact in weaver's float32 inputs, unlike TrackML's 64-bit ids), ``hit_pt`` (float32 GeV),
  ``hit_reconstructable`` (int32 0/1), ``hit_particle_eta`` (float32), ``hit_sector`` (int32: the
  particle's core sector or -1), ``hit_particle_nhits``, ``hit_particle_nlayers`` (int32), ``hit_layer_id``
  (int32), ``hit_id`` (int64).
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from partx.atomic import atomic_path
from partx.readers.trackml.features import FEATURE_NAMES

TREE_NAME = "Events"
FEATURE_BRANCHES: tuple[str, ...] = tuple(f"hit_{n}" for n in FEATURE_NAMES) + ("hit_layer",)
COORD_BRANCHES: tuple[str, ...] = ("hit_pos_eta", "hit_pos_phi", "hit_r", "hit_phi", "hit_z", "hit_eta_rz")
#: per-hit branch -> dtype (without the ``hit_`` prefix in the record)
HIT_DTYPES: dict[str, str] = {
    **{b: "float32" for b in FEATURE_BRANCHES},
    "hit_pos_eta": "float32", "hit_pos_phi": "float32",
    "hit_particle_id": "int64", "hit_particle_index": "int32", "hit_pt": "float32",
    "hit_reconstructable": "int32", "hit_particle_eta": "float32", "hit_sector": "int32",
    "hit_particle_nhits": "int32", "hit_particle_nlayers": "int32", "hit_layer_id": "int32", "hit_id": "int64",
}
ROW_DTYPES: dict[str, str] = {"event_id": "int64", "sector_id": "int32", "n_sectors": "int32"}


def _compression():
    """LZ4 (5x faster to write than uproot's default ZLIB here, files ~35% larger) when lz4 + xxhash are
    installed -- weaver-core requires both, so whoever reads these files with weaver has them -- else ZLIB."""
    import uproot

    try:
        import lz4  # noqa: F401
        import xxhash  # noqa: F401
    except ImportError:
        return uproot.ZLIB(1)
    return uproot.LZ4(1)


def write_rows(path: str | os.PathLike, rows: list[dict[str, np.ndarray]]) -> Path:
    """Write rows (each: ``ROW_DTYPES`` scalars + ``HIT_DTYPES`` (N_row,) arrays) to one ROOT file, atomically.

    Args:
        path: target ``.root`` file.
        rows: one dict per event or sector.
    """
    import uproot

    path = Path(path)
    data: dict = {k: np.array([r[k] for r in rows], dtype=dt) for k, dt in ROW_DTYPES.items()}
    counts = np.array([len(r["hit_id"]) for r in rows], dtype=np.int64)
    fields = {}
    for k, dt in HIT_DTYPES.items():
        flat = np.concatenate([np.asarray(r[k], dtype=dt) for r in rows]) if rows else np.zeros(0, dt)
        fields[k[len("hit_"):]] = ak.unflatten(flat, counts)
    data["hit"] = ak.zip(fields)
    types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()}
    with atomic_path(path) as tmp, uproot.recreate(tmp, compression=_compression()) as f:
        f.mktree(TREE_NAME, types).extend(data)
    return path


def read_rows(path: str | os.PathLike) -> ak.Array:
    """All branches of a file written by ``write_rows`` (for tests and checks)."""
    import uproot

    with uproot.open(path) as f:
        return f[TREE_NAME].arrays()
