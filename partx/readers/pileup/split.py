"""HEPT's pileup split, on raw files.

Reference: Graph-COM/HEPT ``src/datasets/pileup.py``: ``Pileup.process`` reads ``testTTbar_part1.root``
as the training set and ``testTTbar_part2.root`` as validation + test; ``get_idx_split`` shuffles the
second file's events (``np.random.shuffle`` after ``set_seed(42)``) and gives the first ``n // 2`` to
validation, the rest to test. With several raw files: files whose name contains ``part1`` are the
training part when the names follow HEPT's ``part1`` / ``part2`` convention (partx's generator writes
``pileup_part{1,2}_NNNNN.root``), else the first file in name order, as HEPT. The shuffle uses
``np.random.default_rng(seed)`` (HEPT's global generator has been advanced by its threaded per-event
permutations before the shuffle, so its exact split cannot be reproduced; membership follows the same rule).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
_PART = re.compile(r"part([12])(?!\d)")


def train_files(files: list[Path]) -> list[Path]:
    """The raw files forming HEPT's training part (see the module doc)."""
    files = sorted(files, key=lambda p: p.name)
    parts = [_PART.search(p.name) for p in files]
    if all(parts) and any(m.group(1) == "1" for m in parts) and any(m.group(1) == "2" for m in parts):
        return [p for p, m in zip(files, parts) if m.group(1) == "1"]
    return files[:1]


def assign(n_train: int, n_rest: int, seed: int) -> np.ndarray:
    """Split of every event (0 train, 1 val, 2 test): the first ``n_train`` are training events; the other
    ``n_rest`` (in file order) are shuffled and halved, ``n_rest // 2`` to validation and the rest to test."""
    out = np.zeros(n_train + n_rest, dtype=np.int8)
    perm = np.random.default_rng(seed).permutation(n_rest)
    rest = np.full(n_rest, 2, dtype=np.int8)
    rest[perm[: n_rest // 2]] = 1
    out[n_train:] = rest
    return out
