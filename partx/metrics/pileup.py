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


def event_bootstrap(events: list[dict], scores: tuple[str, ...] = ("prob", "w_puppi"), n_boot: int = 200, seed: int = 0) -> dict:
    """Standard errors of the pooled ROC AUC and average precision by resampling whole events (particles of one
    event are correlated: the event is the independent unit), for each per-event score array in ``scores``
    (e.g. the model's ``prob`` and the PUPPI-like ``w_puppi``), and of the paired difference first - other
    (the same resampled events for both).

    Returns:
        ``{"n_boot", "se": {score: {metric: se}}, "difference": {other: {metric: {"diff", "se"}}}}``.
    """
    present = [k for k in scores if events and all(k in ev for ev in events)]
    per = []
    for ev in events:
        s = np.asarray(ev["is_scored"]).astype(bool)
        per.append((np.asarray(ev["is_lv"]).astype(int)[s], {k: np.asarray(ev[k], np.float64)[s] for k in present}))
    rng = np.random.default_rng(seed)
    draws: dict[str, dict[str, list]] = {k: {"roc_auc": [], "average_precision": []} for k in present}
    for _ in range(n_boot if per and present else 0):
        idx = rng.integers(0, len(per), len(per))
        y = np.concatenate([per[i][0] for i in idx])
        if not 0 < y.sum() < len(y):
            continue
        for k in present:
            p = np.concatenate([per[i][1][k] for i in idx])
            draws[k]["roc_auc"].append(roc_auc_score(y, p))
            draws[k]["average_precision"].append(average_precision_score(y, p))
    out = {"n_boot": n_boot, "se": {k: {m: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for m, v in d.items()}
                                    for k, d in draws.items()}, "difference": {}}
    if len(present) > 1:
        first = present[0]
        y_all = np.concatenate([y for y, _ in per])
        full = {k: binary_metrics(np.concatenate([q[k] for _, q in per]), y_all) for k in present}
        for k in present[1:]:
            out["difference"][k] = {m: {"diff": full[first][m] - full[k][m],
                                        "se": float(np.std(np.subtract(draws[first][m], draws[k][m]), ddof=1)) if len(draws[k][m]) > 1 else float("nan")}
                                    for m in ("roc_auc", "average_precision")}
    return out
