"""Jet-tagging metrics in the conventions of the ParT paper (arXiv:2202.03772, Table 2).

* accuracy: argmax of the scores against the true class;
* macro AUC: one-vs-rest ROC AUC averaged over classes (sklearn ``roc_auc_score(multi_class="ovr")``);
* rejection of each signal class X against QCD: with the discriminant S_X / (S_X + S_QCD), the inverse
  background (QCD) efficiency at a fixed signal efficiency: 50% for most classes, 99% for H->lvqq'
  and 99.5% for t->bqq' (where 50% would be trivially background-free).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

#: Signal efficiency at which each class's rejection is quoted (ParT paper, Table 2).
REJECTION_WORKING_POINTS = {
    "label_Hbb": 0.5, "label_Hcc": 0.5, "label_Hgg": 0.5, "label_H4q": 0.5, "label_Hqql": 0.99,
    "label_Zqq": 0.5, "label_Wqq": 0.5, "label_Tbqq": 0.995, "label_Tbl": 0.5,
}


@dataclass
class JetMetrics:
    n_jets: int
    accuracy: float
    macro_auc: float
    rejection: dict[str, float] = field(default_factory=dict)  # label -> 1/eps_B at the working point
    working_point: dict[str, float] = field(default_factory=dict)
    n_background: int = 0

    def table(self) -> str:
        rows = [f"jets {self.n_jets}   accuracy {self.accuracy:.4f}   macro AUC {self.macro_auc:.4f}"]
        for label, rej in self.rejection.items():
            wp = self.working_point[label]
            # no background jet passes: the rejection is only bounded by the background sample size
            value = f"{rej:10.1f}" if rej != float("inf") else f"> {self.n_background:8d} (no QCD jet passes)"
            rows.append(f"  {label:<12} rejection @ {100 * wp:g}% signal eff.: {value}")
        return "\n".join(rows)


def _check(scores: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        raise ValueError(f"scores must be (n_jets, {n_classes}), got {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must be ({scores.shape[0]},) class indices, got {labels.shape}")
    if scores.shape[0] == 0:
        raise ValueError("no jets to evaluate")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} non-finite scores (NaN/inf): the model output is broken")


def rejection_at(signal: np.ndarray, background: np.ndarray, signal_eff: float) -> float:
    """1 / background efficiency at the cut keeping ``signal_eff`` of the signal (inf if none pass)."""
    cut = np.quantile(signal, 1.0 - signal_eff)
    eff_b = float(np.mean(background >= cut))
    return float("inf") if eff_b == 0 else 1.0 / eff_b


def jet_metrics(scores: np.ndarray, labels: np.ndarray, label_names: list[str], background: str = "label_QCD") -> JetMetrics:
    """scores (n_jets, n_classes) softmax outputs; labels (n_jets,) class indices in ``label_names`` order."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    _check(scores, labels, len(label_names))
    present = np.unique(labels)
    accuracy = float(np.mean(scores.argmax(1) == labels))
    if len(present) == len(label_names):
        macro_auc = float(roc_auc_score(labels, scores / scores.sum(1, keepdims=True), multi_class="ovr", average="macro"))
    else:  # sklearn refuses ovr with absent classes; average over those present
        macro_auc = float(np.mean([roc_auc_score(labels == c, scores[:, c]) for c in present]))
    out = JetMetrics(n_jets=len(labels), accuracy=accuracy, macro_auc=macro_auc)
    if background not in label_names:
        return out
    b = label_names.index(background)
    out.n_background = int((labels == b).sum())
    for c, name in enumerate(label_names):
        if c == b or name not in REJECTION_WORKING_POINTS or c not in present or b not in present:
            continue
        disc = scores[:, c] / np.clip(scores[:, c] + scores[:, b], 1e-12, None)
        wp = REJECTION_WORKING_POINTS[name]
        out.rejection[name] = rejection_at(disc[labels == c], disc[labels == b], wp)
        out.working_point[name] = wp
    return out


def roc_vs_background(scores: np.ndarray, labels: np.ndarray, label_names: list[str], background: str = "label_QCD"):
    """Yield (label, signal_eff, background_rejection) curves of each class against QCD."""
    b = label_names.index(background)
    for c, name in enumerate(label_names):
        if c == b or not ((labels == c).any() and (labels == b).any()):
            continue
        sel = (labels == c) | (labels == b)
        disc = scores[sel, c] / np.clip(scores[sel, c] + scores[sel, b], 1e-12, None)
        fpr, tpr, _ = roc_curve(labels[sel] == c, disc)
        keep = fpr > 0
        yield name, tpr[keep], 1.0 / fpr[keep]
