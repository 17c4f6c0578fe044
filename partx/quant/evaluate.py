"""Side-by-side evaluation of a float model and its quantized / compressed versions on the same jets.

``load_jets`` reads labelled jets through weaver's own dataset code (the data config's preprocessing);
``predict`` runs a model over them in batches; ``paired`` compares two prediction sets on the same jets
(accuracy difference with its paired standard error, prediction flips, max/mean output differences).
"""

from __future__ import annotations

import glob as _glob
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Jets", "load_jets", "predict", "paired", "batches"]


@dataclass
class Jets:
    inputs: dict[str, torch.Tensor]  # input group -> (n_jets, C, N) float32, in the data config's order
    labels: np.ndarray  # (n_jets,) class index
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def args(self, start: int = 0, stop: int | None = None) -> tuple[torch.Tensor, ...]:
        return tuple(t[start:stop] for t in self.inputs.values())


def load_jets(data_config_path: str, patterns: Sequence[str], max_jets: int | None = None) -> Jets:
    """Jets (inputs + class labels) of the files matching ``patterns``, in file order; with ``max_jets``, that
    many evenly spaced over all the jets read (files are one class each: the first jets would be one class).

    Raises FileNotFoundError (no file), ValueError (no jets, non-finite inputs).
    """
    from weaver.utils.dataset import SimpleIterDataset

    files = sorted({f for p in patterns for f in (_glob.glob(p) or [])})
    if not files:
        raise FileNotFoundError(f"no data file matches {' '.join(patterns)}")
    ds = SimpleIterDataset({"data": files}, data_config_path, for_training=False, load_range_and_fraction=None,
                           fetch_by_files=True, fetch_step=len(files), in_memory=False, async_load=False, name="quant")
    cfg = ds.config
    cols: dict[str, list] = {n: [] for n in cfg.input_names}
    labels = []
    for X, y, _ in ds:
        for n in cfg.input_names:
            cols[n].append(np.asarray(X[n] if n in X else X["_" + n]))
        labels.append(int(y[cfg.label_names[0]]))
    if not labels:
        raise ValueError(f"no jets read from {' '.join(patterns)}")
    keep = np.arange(len(labels))
    if max_jets is not None and max_jets < len(labels):
        keep = np.linspace(0, len(labels) - 1, max_jets).round().astype(int)
    inputs = {n: torch.as_tensor(np.stack([v[i] for i in keep]), dtype=torch.float32) for n, v in cols.items()}
    labels = [labels[i] for i in keep]
    bad = [n for n, t in inputs.items() if not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"non-finite (NaN/inf) values in input(s) {', '.join(bad)} after weaver's preprocessing")
    return Jets(inputs, np.asarray(labels), list(cfg.label_value))


def batches(jets: Jets, batch_size: int, limit: int | None = None):
    """Forward-argument tuples of ``batch_size`` jets (at most ``limit`` batches)."""
    n = len(jets)
    for i, start in enumerate(range(0, n, batch_size)):
        if limit is not None and i >= limit:
            return
        yield jets.args(start, start + batch_size)


def predict(model: Callable[..., torch.Tensor], jets: Jets, batch_size: int = 256, progress: str | None = None
            ) -> np.ndarray:
    """Model outputs (n_jets, n_classes) as float64 numpy, computed in batches under ``no_grad``."""
    out = []
    it = batches(jets, batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=math.ceil(len(jets) / batch_size), desc=progress, unit="batch", leave=False, disable=None)
    with torch.no_grad():
        for args in it:
            out.append(model(*args).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def paired(ref_probs: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> dict:
    """Compare two softmax outputs on the same jets.

    * ``acc_diff`` = acc - acc_ref and its paired standard error: with b jets right only in ``ref`` and c
      right only in the other, diff = (c - b)/n and SE = sqrt(b + c - (c - b)^2/n)/n (the variance of a
      mean of per-jet differences in {-1, 0, 1}); unpaired binomial errors would be ~sqrt(2 p (1-p)/n),
      far larger than what two models evaluated on the same jets can differ by.
    * ``flips``: jets whose predicted class changes; ``lost``/``gained``: right -> wrong, wrong -> right.
    * ``max/mean_dlogit``: |log p - log p_ref| over all jets and classes: the logit difference with each
      jet's log-sum-exp removed (the models output softmax), floored at p = 1e-30.
    * ``max_dprob``: max |p - p_ref|.
    """
    n = len(labels)
    right_ref = ref_probs.argmax(1) == labels
    right = probs.argmax(1) == labels
    b, c = int((right_ref & ~right).sum()), int((~right_ref & right).sum())
    dlog = np.abs(np.log(np.clip(probs, 1e-30, None)) - np.log(np.clip(ref_probs, 1e-30, None)))
    return dict(acc_diff=(c - b) / n, acc_diff_se=math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n,
                flips=int((ref_probs.argmax(1) != probs.argmax(1)).sum()), lost=b, gained=c,
                max_dlogit=float(dlog.max()), mean_dlogit=float(dlog.mean()),
                max_dprob=float(np.abs(probs - ref_probs).max()))


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else float("nan")
