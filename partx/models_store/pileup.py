"""The ``pileup`` card family: per-particle leading-vertex classifiers (networks/example_*Pileup.py).

A pileup card's checkpoint is scored as weaver's test pass scores it (``partx.train.pileup``): the rows (events)
of processed pileup files (data/Pileup/*.yaml) through weaver's test-time pipeline (``partx.models_store.rows``),
the LV probability of every particle, and the metrics of ``partx.metrics.pileup`` on the scored particles
(neutral, pT > 0.9 GeV): pooled ROC AUC (weaver's model-selection metric), average precision, accuracy, and
their per-event means. The jet-level table is left to weaver's test pass.
"""

from __future__ import annotations

import math

import torch

from partx.models_store.rows import batches

HEADLINE = ("roc_auc", "average_precision")
KEPT = ("roc_auc", "average_precision", "accuracy", "roc_auc_event_mean", "average_precision_event_mean",
        "accuracy_event_mean", "n_scored", "lv_fraction")


def evaluate(model: torch.nn.Module, data_config, files, batch_size: int = 1, max_rows: int | None = None) -> dict:
    """``partx.metrics.pileup.particle_metrics`` of ``model`` on every event of ``files``, and ``n_events``.

    Args:
        model: the weaver-facing pileup model (``PileupWeaverModel``: features (B, F, L), pid (B, 1, L),
            coords (B, D, L), mask (B, 1, L) -> logits (B, L)).
        data_config: a weaver DataConfig of data/Pileup/*.yaml.
        files: glob(s) or paths of processed pileup ROOT files, read sorted (the first ``max_rows`` rows only, when given).
    """
    from partx.metrics.pileup import particle_metrics
    from partx.train.pileup import PileupInputs, events_of, forward_logits, unpack

    io, events = PileupInputs(), []
    model.eval()
    with torch.no_grad():
        for X in batches(data_config, files, batch_size, max_rows):
            batch = unpack(X, io, "cpu")
            events.extend(events_of(batch, forward_logits(model, batch)))
    m = particle_metrics(events)
    out = {k: (round(float(m[k]), 6) if isinstance(m[k], float) and math.isfinite(m[k]) else m[k]) for k in KEPT}
    return dict(out, n_events=len(events))
