"""Per-particle pileup metrics on the scored particles (neutral, pT > 0.9 GeV), each under its own name.

    accuracy             fraction of scored particles with (p > threshold) == label (threshold 0.5)
    roc_auc              area under the ROC curve (sklearn ``roc_auc_score``)
    average_precision    area under the precision-recall curve, step-wise (sklearn ``average_precision_score``)

Each is computed two ways: ``<name>`` pooled over all scored particles of all events, and
``<name>_event_mean`` per event then averaged (events where it is undefined -- no scored particle, or only
one class for the two areas -- are skipped and counted in ``n_events_skipped_auc``).

Naming versus HEPT: Graph-COM/HEPT ``src/pileup_trainer.py`` (``update_metrics``) logs
``average_precision_score`` under the name **"auc"**, ``roc_auc_score`` as "roc" and F1 at 0.5 as "f1", each
per batch (batch size 1: per event) and averaged over batches (torchmetrics ``MeanMetric``), with "auc" as
the model-selection metric. So HEPT's "auc" is partx's ``average_precision_event_mean`` and HEPT's "roc" is
``roc_auc_event_mean``. The seed paper's Table 3 ("top-1 acc." ~40%, "top-1 ROC" ~76% on Pileup-10k) reads
like HEPT's "auc" (= AP) and "roc" columns; partx does not rely on that reading.
With few positives (LV neutrals are a minority at mu = 200) AP is much lower than ROC AUC.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

NAMES = ("accuracy", "roc_auc", "average_precision")


def _check(prob: np.ndarray, label: np.ndarray) -> None:
    if prob.shape != label.shape:
        raise ValueError(f"predictions {prob.shape} and labels {label.shape} differ in shape")
    if not np.isfinite(prob).all():
        raise ValueError(f"{int((~np.isfinite(prob)).sum())} non-finite predictions (NaN/inf): the model output is broken")


def binary_metrics(prob: np.ndarray, label: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """accuracy / roc_auc / average_precision of one set of particles (NaN where undefined)."""
    prob, label = np.asarray(prob, dtype=np.float64), np.asarray(label).astype(int)
    _check(prob, label)
    if len(label) == 0:
        return {k: float("nan") for k in NAMES}
    out = {"accuracy": float(np.mean((prob > threshold) == (label == 1)))}
    both = 0 < label.sum() < len(label)
    out["roc_auc"] = float(roc_auc_score(label, prob)) if both else float("nan")
    out["average_precision"] = float(average_precision_score(label, prob)) if both else float("nan")
    return out


def particle_metrics(events: list[dict], threshold: float = 0.5) -> dict[str, float]:
    """Pooled and per-event-averaged metrics over the scored particles.

    Args:
        events: one dict per event with ``prob`` (n,) predicted LV probability, ``is_lv`` (n,) 0/1 truth,
            ``is_scored`` (n,) bool.
    Returns:
        ``accuracy``, ``roc_auc``, ``average_precision`` (pooled), the same with ``_event_mean``, and
        ``n_events``, ``n_scored``, ``lv_fraction`` (of the scored particles), ``n_events_skipped_auc``.
    """
    per, probs, labels = [], [], []
    for ev in events:
        s = np.asarray(ev["is_scored"]).astype(bool)
        p, y = np.asarray(ev["prob"], dtype=np.float64)[s], np.asarray(ev["is_lv"]).astype(int)[s]
        _check(p, y)
        probs.append(p)
        labels.append(y)
        per.append(binary_metrics(p, y, threshold))
    p = np.concatenate(probs) if probs else np.zeros(0)
    y = np.concatenate(labels) if labels else np.zeros(0, int)
    out = binary_metrics(p, y, threshold)
    for k in NAMES:
        vals = [m[k] for m in per if np.isfinite(m[k])]
        out[f"{k}_event_mean"] = float(np.mean(vals)) if vals else float("nan")
    out.update(n_events=len(events), n_scored=int(len(y)), lv_fraction=float(y.mean()) if len(y) else float("nan"),
               n_events_skipped_auc=sum(not np.isfinite(m["roc_auc"]) for m in per), threshold=threshold)
    return out


def puppi_like_metrics(events: list[dict], threshold: float = 0.5) -> dict[str, float]:
    """``particle_metrics`` of the PUPPI-like weight (partx.metrics.puppi) used as the LV score: the baseline
    a learned model is measured against at particle level. The events need the kinematics and ``charged``
    besides ``is_lv`` / ``is_scored`` (as the jet metrics); the weights are kept in ``ev["w_puppi"]``."""
    from partx.metrics.pileup_jets import event_puppi_weights

    return particle_metrics([dict(ev, prob=event_puppi_weights(ev)) for ev in events], threshold)
