"""Atomic writer of JetClass-format ROOT files (classic TTree, never RNTuple).

uproot 5.7 writes RNTuple from ``file["name"] = ...``; ``mktree`` + ``extend`` gives a classic TTree.
Jagged branches are grouped into records so that branches of equal length share one counter branch
(``npart`` for ``part_*``, ``naux`` for ``aux_*``): the branch names come out exactly as in the schema
(``part_px``, ``aux_genpart_eta``, ``aux_truth_match``) and a reader sees ``var * float32`` etc.

A file is written under a hidden temporary name in the target directory (``partx.atomic.atomic_path``)
and renamed only once it is closed, so a file with the final name is always complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from partx.datagen import schema

def stale_temp_files(directory: Path) -> list[Path]:
    """Temporary files an interrupted writer left in ``directory`` (``atomic_path``'s hidden names)."""
    return sorted(directory.glob(".*.tmp.root"))


def _group(arrays: dict[str, ak.Array | np.ndarray]) -> tuple[dict, dict]:
    """Split branch arrays into {record or flat name: array} and the matching mktree types."""
    types = schema.branch_types()
    missing = set(types) - set(arrays)
    if missing:
        raise KeyError(f"branches missing from the arrays to write: {sorted(missing)}")
    data: dict = {}
    groups: dict[str, dict] = {"part": {}, "aux": {}}
    for name, t in types.items():
        arr = arrays[name]
        if t.startswith("var * "):
            dtype = np.dtype(t.split()[-1])
            prefix = "part" if name.startswith("part_") else "aux"
            groups[prefix][name[len(prefix) + 1:]] = ak.values_astype(ak.Array(arr), dtype)
        else:
            data[name] = np.asarray(arr, dtype=np.dtype(t))
    for prefix, fields in groups.items():
        data[prefix] = ak.zip(fields)
    mk = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()}
    return data, mk


def write_jetclass(path: str | os.PathLike, arrays: dict) -> Path:
    """Write one JetClass file atomically; return its final path."""
    import uproot

    from partx.atomic import atomic_path

    path = Path(path)
    data, mk = _group(arrays)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as f:
        f.mktree(schema.TREE_NAME, mk).extend(data)
    return path
