"""The ``tracking`` card family: per-hit embedding networks (HEPT, Mamba, Mamba-a, Mamba-b) on TrackML sectors.

A tracking card's checkpoint is scored as weaver's test pass scores it (``partx.train.tracking``): the rows of
preprocessed TrackML files (data/TrackML/*.yaml) through weaver's test-time pipeline (``partx.models_store.rows``),
the embeddings of each sector's real hits, and HEPT's kNN metrics over sectors (``partx.metrics.tracking.knn_metrics``:
``accuracy@0.9``, ``recall@0.9``, ...). DBSCAN tracks are not part of a card's metrics (their radius is tuned on
validation and they cost seconds per sector); weaver's test pass records them in the run folder.
"""

from __future__ import annotations

import torch

from partx.models_store.rows import batches

#: the metrics a tracking card records and ``list`` shows (HEPT's main metric first)
HEADLINE = ("accuracy@0.9", "recall@0.9")
#: what a card's metrics block keeps of ``knn_metrics`` (all pT thresholds)
KEPT = tuple(f"{m}@{t}" for t in (0.0, 0.5, 0.9) for m in ("accuracy", "precision", "recall"))


def evaluate(model: torch.nn.Module, data_config, files, batch_size: int = 4, max_rows: int | None = None) -> dict:
    """HEPT's kNN metrics of ``model`` on every row (sector) of ``files``, and ``n_events`` (rows with hits).

    Args:
        model: the weaver-facing tracking model (``TrackingWeaverModel``: (B, D, L), (B, C, L), (B, 1, L) -> (B, E, L)).
        data_config: a weaver DataConfig of data/TrackML/*.yaml.
        files: glob(s) or paths of preprocessed TrackML ROOT files, read sorted (the first ``max_rows`` rows only, when given).
    """
    from partx.metrics.tracking import knn_metrics
    from partx.train.tracking import TrackingInputs, embed, events_of, unpack

    io, events = TrackingInputs(), []
    model.eval()
    with torch.no_grad():
        for X in batches(data_config, files, batch_size, max_rows):
            batch = unpack(X, io, "cpu")
            events.extend(events_of(batch, embed(model, batch)))
    metrics = knn_metrics(events)
    return dict({k: round(metrics[k], 6) for k in KEPT}, n_events=len(events))
