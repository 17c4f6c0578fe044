"""Atomic writer of JetClass-format ROOT files (classic TTree, never RNTuple).

uproot 5.7 writes RNTuple from ``file["name"] = ...``; ``mktree`` + ``extend`` gives a classic TTree.
Jagged branches are grouped into records so that branches of equal length share one counter branch
(``npart`` for ``part_*``, ``naux`` for ``aux_*``): the branch names come out exactly as in the schema
(``part_px``, ``aux_genpart_eta``, ``aux_truth_match``) and a reader sees ``var * float32`` etc.

A file is written under a hidden temporary name in the target directory and renamed with
``os.replace`` only once it is closed, so a file with the final name is always complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from partx.datagen import schema

TMP_PREFIX = ".tmp-"


def tmp_path(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")


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

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data, mk = _group(arrays)
    tmp = tmp_path(path)
    try:
        with uproot.recreate(tmp) as f:
            tree = f.mktree(schema.TREE_NAME, mk)
            tree.extend(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
