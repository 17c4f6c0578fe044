"""The processed files of the pileup contract (/work/notes/pileup_contract.md, docs/pileup_data.md).

Tree ``Events``, one row per event, LZ4 (``partx.readers.trackml.rootio._compression``): ``event_id``
(int64), ``n_particles`` (int32 counter) and jagged float32 ``part_<name>`` for each name of
``event.PART_DTYPES`` (uproot ``mktree`` with a record ``part``, so a classic TTree weaver reads).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import awkward as ak
import numpy as np

from partx.atomic import atomic_dir, atomic_path
from partx.readers.pileup.event import PART_DTYPES
from partx.readers.trackml.rootio import _compression

TREE_NAME = "Events"
COUNTER = "n_particles"


def write_events(path: str | os.PathLike, rows: list[dict[str, np.ndarray]]) -> Path:
    """Write rows (``event.process_event`` outputs) to one ROOT file, atomically."""
    import uproot

    path = Path(path)
    counts = np.array([len(r["part_pt"]) for r in rows], dtype=np.int64)
    part = ak.zip({k: ak.unflatten(np.concatenate([r[f"part_{k}"] for r in rows]).astype(dt) if rows
                                   else np.zeros(0, dt), counts) for k, dt in PART_DTYPES.items()})
    data = {"event_id": np.array([r["event_id"] for r in rows], dtype=np.int64), "part": part}
    types = {"event_id": np.dtype(np.int64), "part": part.type.content}
    with atomic_path(path) as tmp, uproot.recreate(tmp, compression=_compression()) as f:
        f.mktree(TREE_NAME, types, counter_name=lambda _: COUNTER,
                 field_name=lambda outer, inner: f"{outer}_{inner}").extend(data)
    return path


def read_events(path: str | os.PathLike) -> ak.Array:
    """All branches of a processed file (for tests and checks)."""
    import uproot

    with uproot.open(path) as f:
        return f[TREE_NAME].arrays()


class SplitWriter(contextlib.ExitStack):
    """Rows of several splits -> ``root/{split}/pileup_NNNNN.root``, ``per_file`` rows a file.

    Each split folder is built under a hidden name and swapped in when the ``with`` block ends without
    an error (``partx.atomic.atomic_dir``); on an error or Ctrl-C the previous folders stay as they were.
    """

    def __init__(self, root: str | os.PathLike, splits: tuple[str, ...], per_file: int):
        super().__init__()
        self.root, self.splits, self.per_file = Path(root), splits, per_file
        self.buf: dict[str, list] = {s: [] for s in splits}
        self.files = {s: 0 for s in splits}

    def __enter__(self):
        super().__enter__()
        self.dirs = {s: self.enter_context(atomic_dir(self.root / s)) for s in self.splits}
        return self

    def add(self, split: str, row: dict[str, np.ndarray]) -> None:
        self.buf[split].append(row)
        if len(self.buf[split]) == self.per_file:
            self._flush(split)

    def _flush(self, split: str) -> None:
        if self.buf[split]:
            write_events(self.dirs[split] / f"pileup_{self.files[split]:05d}.root", self.buf[split])
            self.files[split] += 1
            self.buf[split] = []

    def __exit__(self, *exc):
        if exc[0] is None:
            for s in self.splits:
                self._flush(s)
        return super().__exit__(*exc)
