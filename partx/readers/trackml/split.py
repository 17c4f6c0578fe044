"""train / val / test split by event, HEPT's 80 / 10 / 10 in event-id order.

Reference: Graph-COM/HEPT ``src/datasets/tracking.py``, ``get_new_idx_split``: graphs argsorted by event
id, the first int(0.8 n) (rounded down to a multiple of 10) train, the next int(0.1 n) valid, the rest test.
HEPT splits graphs (sectors); ``split_events`` splits whole events (so no sector of an event crosses
splits and no multiple-of-10 rounding is needed); ``hept_graph_split`` is HEPT's formula itself, used for
HEPT's own processed files.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def split_events(event_ids: list[int] | np.ndarray, fractions: tuple[float, float] = (0.8, 0.1)) -> dict[str, list[int]]:
    """Sorted event ids -> {"train": first int(0.8 n), "val": next int(0.1 n), "test": the rest}.

    With 3 to 9 events int(0.1 n) is 0; val and test then get one event each (taken from train), so a small
    generated set can still be trained and evaluated. From 10 events on this is HEPT's formula.
    """
    ids = sorted(int(e) for e in event_ids)
    n_train = int(len(ids) * fractions[0])
    n_val = int(len(ids) * fractions[1])
    if len(ids) >= 3 and n_val == 0:
        n_val = 1
        n_train = min(n_train, len(ids) - 2)
    return {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}


def hept_graph_split(evtid: np.ndarray) -> dict[str, np.ndarray]:
    """HEPT's ``get_new_idx_split`` on per-graph event ids (stable argsort; HEPT's torch argsort is not
    stable, which only permutes the sectors of one event). Returns graph indices per split."""
    idx = np.argsort(np.asarray(evtid), kind="stable")
    n = len(idx)
    n_train = int(n * 0.8)
    n_train -= n_train % 10
    n_val = int(n * 0.1)
    return {"train": idx[:n_train], "val": idx[n_train:n_train + n_val], "test": idx[n_train + n_val:]}
