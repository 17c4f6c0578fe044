"""Run a loaded checkpoint on JetClass-format files and score it (the numbers a card records).

Inputs come through weaver's own test-time pipeline (``partx.interpret.jets.load_jets``: selection, new
variables, standardisation, padding, as weaver's test loader), so the model sees what weaver fed it.
Accuracy carries its binomial standard error sqrt(p (1 - p) / n): the test jets are n independent draws,
each classified right with probability p; it is the error of the test-set estimate, not the run-to-run
spread of training (README: ±0.03 for the demo ParT).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from partx.metrics.jets import JetMetrics, jet_metrics


def predict(model: torch.nn.Module, inputs: dict[str, np.ndarray], input_names, batch_size: int = 256) -> np.ndarray:
    """Softmax scores (J, C) of ``model`` on weaver inputs (name -> (J, C_in, N) arrays, fed in ``input_names`` order)."""
    n = len(next(iter(inputs.values())))
    out = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            args = [torch.from_numpy(inputs[k][start:start + batch_size]) for k in input_names]
            out.append(torch.softmax(model(*args).float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy ``p`` measured on ``n`` independent jets."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def evaluate_files(model: torch.nn.Module, data_config, files, jets_per_class: int = 10**9,
                   batch_size: int = 256) -> tuple[JetMetrics, np.ndarray, np.ndarray, list[str]]:
    """(metrics, scores, labels, class names) of ``model`` on up to ``jets_per_class`` jets of each class."""
    from partx.interpret.jets import load_jets

    jets = load_jets(data_config, files, jets_per_class)
    scores = predict(model, jets.inputs, data_config.input_names, batch_size)
    return jet_metrics(scores, jets.labels, jets.class_names), scores, jets.labels, jets.class_names


def card_metrics(metrics: JetMetrics, scores: np.ndarray, labels: np.ndarray) -> dict:
    """The ``metrics`` block of a card: accuracy with its binomial SE, AUC (paper's), rejections."""
    correct = int((scores.argmax(1) == labels).sum())
    return dict(n_jets=metrics.n_jets, correct=correct, accuracy=round(metrics.accuracy, 4),
                accuracy_se=round(binomial_se(metrics.accuracy, metrics.n_jets), 4),
                auc=round(metrics.auc, 4),
                rejection={k.removeprefix("label_"): (round(v, 1) if math.isfinite(v) else "inf")
                           for k, v in metrics.rejection.items()})
