"""Read weaver's ``--predict-output`` ROOT files back into (scores, labels)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np


class PredictionFileError(ValueError):
    """A prediction file is missing, unreadable, or lacks the score/label branches weaver writes."""


def load_weaver_predictions(patterns: list[str], tree: str = "Events") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Concatenate weaver prediction files.

    Returns scores (n, C) in the order of the ``score_<label>`` branches, class indices (n,) from the
    one-hot ``<label>`` branches, and the label names.
    """
    import uproot

    matched = [f for p in patterns for f in (glob.glob(p) or ([p] if Path(p).exists() else []))]
    # one file named twice (a glob and its path, ./x and x) must not count its jets twice
    files = sorted({os.path.realpath(f): f for f in matched}.values())
    if not files:
        raise PredictionFileError(f"no prediction file matches {' '.join(patterns)}")
    scores, labels, names = [], [], None
    for path in files:
        try:
            with uproot.open(path) as f:
                if tree not in f:
                    raise PredictionFileError(f"{path}: no tree {tree!r} (is this a weaver --predict-output file?)")
                t = f[tree]
                file_names = [k[len("score_"):] for k in t.keys() if k.startswith("score_")]
                if not file_names:
                    raise PredictionFileError(f"{path}: no score_* branches")
                missing = [n for n in file_names if n not in t.keys()]
                if missing:
                    raise PredictionFileError(f"{path}: score branches without truth branches: {missing}")
                # weaver writes score_<label> beside every one-hot <label>: a truth branch without its
                # score means the file is incomplete, and its jets would otherwise vanish from the metrics
                orphans = [k for k in t.keys() if k.startswith("label_") and f"score_{k}" not in t.keys()]
                if orphans:
                    raise PredictionFileError(f"{path}: truth branches without score branches: {orphans}")
                arrays = t.arrays([f"score_{n}" for n in file_names] + file_names, library="np")
        except PredictionFileError:
            raise
        except Exception as err:
            raise PredictionFileError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
        if names is not None and file_names != names:
            raise PredictionFileError(f"{path}: labels {file_names} differ from the other files' {names}")
        names = file_names
        onehot = np.stack([arrays[n] for n in names], axis=1).astype(float)
        bad = int((onehot.sum(1) != 1).sum())
        if bad:
            raise PredictionFileError(f"{path}: {bad} of {len(onehot)} entries do not have exactly one true label among "
                                      f"{names}")
        scores.append(np.stack([arrays[f"score_{n}"] for n in names], axis=1))
        labels.append(onehot.argmax(1))
    return np.concatenate(scores), np.concatenate(labels), names
