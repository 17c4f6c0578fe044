"""One TrackML event -> HEPT's per-hit table (pixel hits, features, truth), before sectoring.

Follows Graph-COM/HEPT ``data/tracking/raw/preprocessing/point_cloud_builder.py``, ``PointCloudBuilder``:
``restrict_to_subdetectors`` -> ``append_features`` -> the reconstructable / n_hits / n_layers_hit maps of
``process`` (computed on the whole event's pixel hits, before any sector is cut).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from partx.readers.trackml.features import (FEATURE_NAMES, DetectorTable, calc_eta, cell_features,
                                             position_features, restrict_to_pixels)


@dataclass
class EventHits:
    """Per-hit arrays of one event (N pixel hits kept by HEPT, in HEPT's row order).

    Attributes:
        event_id: the TrackML event number.
        hit_id: (N,) int64.
        layer: (N,) int64 layer index over the sorted (volume, layer) pixel pairs present.
        raw: (N, 14) float64 unscaled features in ``FEATURE_NAMES`` order.
        particle_id: (N,) int64, 0 = noise.
        pt: (N,) float32 particle transverse momentum (GeV) at production, 0 for noise.
        particle_eta: (N,) float32 particle pseudorapidity from (pT, pz); 0 for noise (HEPT: NaN).
        reconstructable: (N,) bool: particle_id > 0 with hits on >= 3 distinct pixel layers.
        n_hits: (N,) int64 pixel hits of the hit's particle in the event (noise: number of noise hits).
        n_layers_hit: (N,) int64 distinct pixel layers of the hit's particle.
    """

    event_id: int
    hit_id: np.ndarray
    layer: np.ndarray
    raw: np.ndarray
    particle_id: np.ndarray
    pt: np.ndarray
    particle_eta: np.ndarray
    reconstructable: np.ndarray
    n_hits: np.ndarray
    n_layers_hit: np.ndarray

    def __len__(self) -> int:
        return len(self.hit_id)

    def feature(self, name: str) -> np.ndarray:
        """One unscaled feature column by HEPT name (``r``, ``u``, ...)."""
        return self.raw[:, FEATURE_NAMES.index(name)]


def build_event(event_id: int, event: dict[str, pd.DataFrame], detector: DetectorTable) -> EventHits:
    """HEPT's per-hit table of one event.

    Args:
        event_id: event number.
        event: ``partx.datagen.trackml.io.read_event`` output (hits, cells, particles, truth).
        detector: module geometry of the event's detector.
    """
    hits = restrict_to_pixels(event["hits"])
    particles = event["particles"][["particle_id", "px", "py", "pz"]].copy()
    particles["pt"] = np.sqrt(particles.px ** 2 + particles.py ** 2)
    particles["eta_pt"] = calc_eta(particles.pt.to_numpy(), particles.pz.to_numpy())
    truth = event["truth"][["hit_id", "particle_id"]]
    # HEPT: truth inner-joined with particles (hits of particles missing from particles.csv drop out),
    # noise rows (particle_id 0) added back with pt 0; then hits inner-joined with truth on hit_id
    matched = truth.merge(particles[["particle_id", "pt", "eta_pt"]], on="particle_id")
    noise = truth[truth.particle_id == 0].assign(pt=np.float32(0), eta_pt=np.float32(0))
    truth = pd.concat([matched, noise])
    feats = {**position_features(hits), **cell_features(hits, event["cells"], detector)}
    table = hits[["hit_id", "layer"]].assign(_row=np.arange(len(hits)))
    table = table.merge(truth, on="hit_id")
    rows = table._row.to_numpy()
    raw = np.stack([np.asarray(feats[n], dtype=np.float64)[rows] for n in FEATURE_NAMES], axis=1)

    pid = table.particle_id.to_numpy(np.int64)
    layer = table.layer.to_numpy(np.int64)
    upid, inverse, counts = np.unique(pid, return_inverse=True, return_counts=True)
    pairs = np.unique(np.stack([inverse, layer], axis=1), axis=0)
    n_layers = np.bincount(pairs[:, 0], minlength=len(upid))
    return EventHits(
        event_id=int(event_id),
        hit_id=table.hit_id.to_numpy(np.int64),
        layer=layer,
        raw=raw,
        particle_id=pid,
        pt=table.pt.to_numpy(np.float32),
        particle_eta=table.eta_pt.to_numpy(np.float32),
        reconstructable=(n_layers[inverse] >= 3) & (pid > 0),
        n_hits=counts[inverse].astype(np.int64),
        n_layers_hit=n_layers[inverse].astype(np.int64),
    )
