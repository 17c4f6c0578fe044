"""Jet-tagging metrics in the conventions of the ParT paper (arXiv:2202.03772, Table 2).

* accuracy: argmax of the scores against the true class;
* AUC: the paper's AUC (ParT on JetClass: 0.9877) is the macro average over *pairs* of classes,
  one-vs-one (Hand & Till), which is what weaver-core computes for its ``roc_auc_score`` metric
  (``weaver/utils/nn/metrics.py``: ``sklearn.metrics.roc_auc_score(..., multi_class="ovo")``).
  The one-vs-rest macro average is also reported, under its own name (``auc_ovr``): it is a
  different number (lower when classes are confused in pairs) and not comparable with the paper;
* rejection of each signal class X against QCD: with the discriminant S_X / (S_X + S_QCD), the inverse
  background (QCD) efficiency at a fixed signal efficiency. Table 2 of the paper quotes
  Rej_50% for H->bb, H->cc, H->gg, H->4q, Z->qq, W->qq and t->bqq', Rej_99% for H->lvqq' and
  Rej_99.5% for t->blv: the two classes with a lepton are separated from QCD so well that at 50%
  efficiency almost no QCD jet survives in a test set, so they are quoted at a much higher efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

#: Signal efficiency at which each class's rejection of QCD is quoted (ParT paper, Table 2 column heads).
REJECTION_WORKING_POINTS = {
    "label_Hbb": 0.5, "label_Hcc": 0.5, "label_Hgg": 0.5, "label_H4q": 0.5, "label_Hqql": 0.99,
    "label_Zqq": 0.5, "label_Wqq": 0.5, "label_Tbqq": 0.5, "label_Tbl": 0.995,
}


@dataclass
class JetMetrics:
    n_jets: int
    accuracy: float
    auc: float  # macro one-vs-one over class pairs: the paper's "AUC"
    auc_ovr: float  # macro one-vs-rest (not the paper's convention)
    rejection: dict[str, float] = field(default_factory=dict)  # label -> 1/eps_B at the working point
    working_point: dict[str, float] = field(default_factory=dict)
    n_background: int = 0
    classes_present: int = 0
    classes_total: int = 0
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [f"jets {self.n_jets}   accuracy {self.accuracy:.4f}   AUC (one-vs-one, as the paper) {self.auc:.4f}"
                f"   [one-vs-rest {self.auc_ovr:.4f}]"]
        for label, rej in self.rejection.items():
            wp = self.working_point[label]
            # no background jet passes: the rejection is only bounded by the background sample size
            value = f"{rej:10.1f}" if rej != float("inf") else f"> {self.n_background:8d} (no QCD jet passes)"
            rows.append(f"  {label:<12} rejection @ {100 * wp:g}% signal eff.: {value}")
        rows += [f"  note: {n}" for n in self.notes]
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
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"class indices must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")


def rejection_at(signal: np.ndarray, background: np.ndarray, signal_eff: float) -> float:
    """1 / background efficiency at the first ROC point whose signal efficiency exceeds ``signal_eff``
    (inf if no background jet passes that cut).

    This is weaver-core's definition (``_bkg_rejection`` in weaver/utils/nn/metrics.py, kept there as a
    comment): ``fpr, tpr = roc_curve(...)``; the first index with ``tpr > sig_eff``; ``1 / fpr``.
    Every ROC point is kept (``drop_intermediate=False``) so that first point is never skipped.
    """
    truth = np.r_[np.ones(len(signal), bool), np.zeros(len(background), bool)]
    fpr, tpr, _ = roc_curve(truth, np.r_[signal, background], drop_intermediate=False)
    eff_b = float(fpr[np.argmax(tpr > signal_eff)])
    return float("inf") if eff_b == 0 else 1.0 / eff_b


def macro_aucs(scores: np.ndarray, labels: np.ndarray, present: np.ndarray) -> tuple[float, float]:
    """(one-vs-one, one-vs-rest) macro AUCs over the classes present in ``labels``.

    sklearn needs every score column to have jets and the scores to sum to one: with absent classes
    both averages are taken over the present classes, their scores renormalised (the caller notes it).
    """
    probs = scores[:, present]
    probs = probs / np.clip(probs.sum(1, keepdims=True), 1e-12, None)
    idx = np.searchsorted(present, labels)
    if len(present) == 2:  # sklearn's binary case: the AUC of the second class's score
        auc = float(roc_auc_score(idx, probs[:, 1]))
        return auc, auc
    return (float(roc_auc_score(idx, probs, multi_class="ovo", average="macro")),
            float(roc_auc_score(idx, probs, multi_class="ovr", average="macro")))


def jet_metrics(scores: np.ndarray, labels: np.ndarray, label_names: list[str], background: str = "label_QCD") -> JetMetrics:
    """scores (n_jets, n_classes) softmax outputs; labels (n_jets,) class indices in ``label_names`` order.

    Raises ValueError when there is nothing meaningful to compute (fewer than two classes among the jets).
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    _check(scores, labels, len(label_names))
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"all {len(labels)} jets are of one class ({label_names[present[0]]}): AUC and rejection "
                         "need at least two classes")
    notes = []
    if len(present) < len(label_names):
        absent = [n for c, n in enumerate(label_names) if c not in present]
        notes.append(f"no jets of {', '.join(absent)}: AUCs over the {len(present)} classes present")
    auc, auc_ovr = macro_aucs(scores, labels, present)
    out = JetMetrics(n_jets=len(labels), accuracy=float(np.mean(scores.argmax(1) == labels)), auc=auc, auc_ovr=auc_ovr,
                     classes_present=len(present), classes_total=len(label_names), notes=notes)
    if background not in label_names:
        notes.append(f"no {background} class: no rejection computed")
        return out
    b = label_names.index(background)
    out.n_background = int((labels == b).sum())
    if out.n_background == 0:
        notes.append(f"no {background} jets: no rejection computed")
        return out
    for c, name in enumerate(label_names):
        if c == b or name not in REJECTION_WORKING_POINTS or c not in present:
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
