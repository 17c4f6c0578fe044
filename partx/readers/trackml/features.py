"""Per-hit features of HEPT's tracking point clouds, computed exactly as HEPT's preprocessing does.

Reference (Graph-COM/HEPT, read at commit 8d256c1):
* ``data/tracking/raw/preprocessing/point_cloud_builder.py``: ``PointCloudBuilder.restrict_to_subdetectors``
  (pixel layers, layer index), ``append_features`` (r, phi, eta_rz, u, v, charge_frac, particle pT / eta),
  ``calc_eta``; ``DEFAULT_FEATURES`` (feature order).
* ``data/tracking/raw/preprocessing/exatrkx_cell_features.py`` (adapted by HEPT from Exa.TrkX): cluster-shape
  features ``get_all_local_angles``, ``get_all_rotated``, ``extract_dir_new``, ``cartesian_to_spherical``,
  ``theta_to_eta``; detector tables ``DetectorRotations`` / ``DetectorThicknesses`` / ``DetectorPixelSize``.
* ``src/datasets/tracking.py``: ``Tracking.feature_scale`` (r/1000, phi/pi, z/1000, u*1000, v*1000) and
  ``TrackingTransform`` (x gets layer/10 appended; coords = pos (eta, phi) + the first four scaled features).

Dtypes follow HEPT's: hit positions are float32 (as ``trackml.dataset.load_event`` reads them), so r, phi,
eta_rz, u, v are float32 computations; detector pitches and thickness are float64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from partx.datagen.trackml.io import TrackMLFormatError

#: HEPT's 14 hit features, in its order (point_cloud_builder.DEFAULT_FEATURES)
FEATURE_NAMES: tuple[str, ...] = ("r", "phi", "z", "eta_rz", "u", "v", "charge_frac",
                                  "leta", "lphi", "lx", "ly", "lz", "geta", "gphi")
#: HEPT divides the features by these (src/datasets/tracking.py, Tracking.feature_scale)
FEATURE_SCALE: np.ndarray = np.array([1000.0, np.pi, 1000.0, 1, 1 / 1000.0, 1 / 1000.0] + [1.0] * 8)

#: the pixel (volume, layer) pairs HEPT keeps (restrict_to_subdetectors with pixel_only=True)
PIXEL_LAYERS: tuple[tuple[int, int], ...] = tuple(sorted(
    [(8, 2), (8, 4), (8, 6), (8, 8)] + [(7, l) for l in range(2, 15, 2)] + [(9, l) for l in range(2, 15, 2)]))


def calc_eta(r: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Pseudorapidity from a transverse and a longitudinal component (HEPT ``calc_eta``)."""
    theta = np.arctan2(r, z)
    return -np.log(np.tan(theta / 2.0))


def restrict_to_pixels(hits: pd.DataFrame) -> pd.DataFrame:
    """Keep pixel hits and add ``layer``: the index of (volume_id, layer_id) among the sorted pixel pairs
    present in this event. Rows come out grouped by that sorted pair, in file order inside a group, as
    HEPT's ``pd.concat`` over ``groupby(["volume_id", "layer_id"])`` groups orders them.
    """
    pairs = list(zip(hits.volume_id.to_numpy(), hits.layer_id.to_numpy()))
    present = sorted(set(pairs) & set(PIXEL_LAYERS))
    index = {p: i for i, p in enumerate(present)}
    layer = np.array([index.get(p, -1) for p in pairs], dtype=np.int64)
    keep = layer >= 0
    order = np.argsort(layer[keep], kind="stable")
    out = hits[keep].iloc[order].copy()
    out["layer"] = layer[keep][order]
    return out.reset_index(drop=True)


class DetectorTable:
    """Module geometry looked up by (volume_id, layer_id, module_id): rotation, thickness, pitches.

    The same quantities as HEPT's dense ``preprocess_detector`` arrays (``rotations[v, l, m]``: the 3x3
    matrix ``[[rot_xu, rot_xv, rot_xw], [rot_yu, ...], [rot_zu, ...]]``, ``thicknesses``: ``module_t``,
    ``pixel_size``: ``(pitch_u, pitch_v)``), kept sorted by key instead of dense. A hit on a module that
    detectors.csv lacks is an error here (HEPT would read zeros or fail with an IndexError).

    Args:
        detectors: a ``partx.datagen.trackml.io.read_detectors`` frame.
    """

    def __init__(self, detectors: pd.DataFrame):
        key = self._key(detectors.volume_id, detectors.layer_id, detectors.module_id)
        order = np.argsort(key)
        self.keys = key[order]
        d = detectors.iloc[order]
        rot = [f"rot_{a}{b}" for a in "xyz" for b in "uvw"]
        self.rotations = d[rot].to_numpy(np.float64).reshape(-1, 3, 3)
        self.thickness = d.module_t.to_numpy(np.float64)
        self.pitch = d[["pitch_u", "pitch_v"]].to_numpy(np.float64)

    @staticmethod
    def _key(v, l, m) -> np.ndarray:
        return (np.asarray(v, np.int64) * 1000 + np.asarray(l, np.int64)) * 1_000_000 + np.asarray(m, np.int64)

    def rows(self, hits: pd.DataFrame) -> np.ndarray:
        """Row of each hit's module; unknown modules raise ``TrackMLFormatError``."""
        key = self._key(hits.volume_id, hits.layer_id, hits.module_id)
        pos = np.clip(np.searchsorted(self.keys, key), 0, len(self.keys) - 1)
        bad = self.keys[pos] != key
        if bad.any():
            h = hits[bad].iloc[0]
            raise TrackMLFormatError(
                f"hit {int(h.hit_id)} lies on module (volume {int(h.volume_id)}, layer {int(h.layer_id)}, "
                f"module {int(h.module_id)}) which detectors.csv does not list ({int(bad.sum())} such hits)")
        return pos


def _spherical(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of vectors, as exatrkx_cell_features.cartesian_to_spherical + theta_to_eta."""
    r3 = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    theta = np.arccos(z / r3)
    return -np.log(np.tan(0.5 * theta)), np.arctan2(y, x)


def cell_features(hits: pd.DataFrame, cells: pd.DataFrame, detector: DetectorTable) -> dict[str, np.ndarray]:
    """Cluster-shape features per hit (rows aligned with ``hits``), as HEPT computes them.

    charge_frac = summed cell charge / number of cells (``append_features``); the cluster extent in the
    module frame l = (n_u * pitch_u, n_v * pitch_v, 2 * module_t) with n_u, n_v the spans of ch0, ch1
    (``get_all_local_angles``); leta/lphi its direction, lx/ly/lz its components; geta/gphi the direction
    of rot @ l (``get_all_rotated``, ``extract_dir_new``).

    HEPT pairs the per-hit cell aggregates (indexed by sorted hit_id) with the hits by position, which is
    the same as pairing by hit_id when hit ids increase with (volume, layer), as in TrackML files; partx
    pairs by hit_id.

    Args:
        hits: pixel hits (``restrict_to_pixels`` output).
        cells: the event's cells (hit_id, ch0, ch1, value).
    """
    c = cells[cells.hit_id.isin(hits.hit_id)]
    agg = c.groupby("hit_id").agg(ch0_min=("ch0", "min"), ch0_max=("ch0", "max"), ch1_min=("ch1", "min"),
                                  ch1_max=("ch1", "max"), charge_sum=("value", "sum"), n=("value", "size"))
    missing = ~hits.hit_id.isin(agg.index)
    if missing.any():
        raise TrackMLFormatError(f"{int(missing.sum())} pixel hit(s) have no cells (first: hit_id "
                                 f"{int(hits.hit_id[missing].iloc[0])}); HEPT's cluster features need them")
    a = agg.loc[hits.hit_id.to_numpy()]
    rows = detector.rows(hits)
    pitch = detector.pitch[rows]
    lu = (a.ch0_max - a.ch0_min + 1).to_numpy() * pitch[:, 0]
    lv = (a.ch1_max - a.ch1_min + 1).to_numpy() * pitch[:, 1]
    lw = 2 * detector.thickness[rows]
    g = np.matmul(detector.rotations[rows], np.stack([lu, lv, lw], axis=1)[:, :, None])[:, :, 0]
    leta, lphi = _spherical(lu, lv, lw)
    geta, gphi = _spherical(g[:, 0], g[:, 1], g[:, 2])
    return {"charge_frac": (a.charge_sum / a.n).to_numpy(), "leta": leta, "lphi": lphi,
            "lx": lu, "ly": lv, "lz": lw, "geta": geta, "gphi": gphi}


def position_features(hits: pd.DataFrame) -> dict[str, np.ndarray]:
    """r, phi, z, eta_rz, u = x / r^2, v = y / r^2 in HEPT's dtypes (float32 positions)."""
    x, y, z = (hits[c].to_numpy() for c in ("x", "y", "z"))
    r = np.sqrt(x ** 2 + y ** 2)
    return {"r": r, "phi": np.arctan2(y, x), "z": z, "eta_rz": calc_eta(r, z),
            "u": x / (x ** 2 + y ** 2), "v": y / (x ** 2 + y ** 2)}


def scaled_features(raw: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """HEPT's model input x (N, 15): the 14 raw features as float32, divided by ``FEATURE_SCALE``
    (in float64, then float32, as torch promotes it in ``Tracking.process_point_cloud``), then layer / 10
    appended (``TrackingTransform``).

    Args:
        raw: (N, 14) unscaled features in ``FEATURE_NAMES`` order.
        layer: (N,) layer index.
    """
    x32 = raw.astype(np.float32)
    x = (x32.astype(np.float64) / FEATURE_SCALE).astype(np.float32)
    return np.concatenate([x, (layer.astype(np.float32) / np.float32(10.0))[:, None]], axis=1)


def hept_coords(raw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """HEPT's coords (N, 6): pos = (eta from float32 r, z; phi) (``process_point_cloud``), then x[:, :4]
    = (r/1000, phi/pi, z/1000, eta_rz) (``TrackingTransform``).

    Args:
        raw: (N, 14) unscaled features.
        x: (N, 15) ``scaled_features`` output.
    """
    r, phi, z = (raw[:, i].astype(np.float32) for i in (0, 1, 2))
    pos = np.stack([calc_eta(r, z), phi], axis=1).astype(np.float32)
    return np.concatenate([pos, x[:, :4]], axis=1)
