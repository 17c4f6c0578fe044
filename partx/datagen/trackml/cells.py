"""Cells (pixels / strips) crossed by a track through a module's thickness, and the measured hit position.

Within a module the track is a straight segment from w = -module_t/2 to w = +module_t/2 through its
true mid-plane point (u, v, 0) with local direction d (the helix curvature over 0.15–0.35 mm is
negligible). Cells form a regular grid anchored at the module corner (u, v) = (-maxhu, -hv):
``ch0 = floor((u + maxhu) / pitch_u)``, ``ch1 = floor((v + hv) / pitch_v)``. The segment projected
onto (u, v) is cut at every grid line it crosses; each piece lies in one cell, which receives
``value = piece's 3-D length × DEDX`` — charge proportional to the path length in the cell (no Landau
fluctuations, no diffusion, no threshold, no capacitive sharing). Cells outside the module are dropped.
The measured hit is the charge-weighted centroid of its cells' centres on the mid-plane (a simple
digitised cluster position); the truth file keeps the exact crossing point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from partx.datagen.trackml.geometry import Detector

#: mean energy loss of a minimum-ionising particle in silicon, MeV / mm (PDG: 3.88 MeV/cm)
DEDX = 0.388
#: the segment's |d_w| is floored here: a track grazing a module crosses at most module_t / MIN_DW
MIN_DW = 0.02


@dataclass
class Cells:
    """Cells of many hits, flattened: (c,) arrays; ``hit`` indexes the hits given to ``make_cells``."""

    hit: np.ndarray
    ch0: np.ndarray
    ch1: np.ndarray
    value: np.ndarray


def _grid_crossings(a0: np.ndarray, a1: np.ndarray, origin: np.ndarray, pitch: np.ndarray):
    """Parameters τ in (0, 1) where the segment a0 -> a1 crosses grid lines origin + k·pitch.

    Returns (hit index, τ) flattened over hits.
    """
    i0 = np.floor((a0 - origin) / pitch)
    i1 = np.floor((a1 - origin) / pitch)
    n = np.abs(i1 - i0).astype(np.int64)
    hit = np.repeat(np.arange(len(a0)), n)
    j = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # 0..n-1 within each hit
    up = np.repeat(i1 > i0, n)
    k = np.where(up, np.repeat(i0, n) + 1 + j, np.repeat(i0, n) - j)  # line k sits between cells k-1 and k
    line = np.repeat(origin, n) + k * np.repeat(pitch, n)
    da = np.repeat(a1 - a0, n)
    tau = (line - np.repeat(a0, n)) / np.where(da == 0, 1.0, da)
    return hit, tau


def make_cells(det: Detector, module: np.ndarray, local: np.ndarray, dir_local: np.ndarray) -> tuple[Cells, np.ndarray]:
    """Cells of each hit and each hit's measured local position.

    Args:
        det: the detector.
        module: (h,) module row index of each hit.
        local: (h, 3) true local crossing point (u, v, w≈0).
        dir_local: (h, 3) unit direction in the module frame.
    Returns:
        (cells, measured (h, 2) local (u, v) on the mid-plane).
    """
    h = len(module)
    t = det.t[module]
    dw = np.where(np.abs(dir_local[:, 2]) < MIN_DW, np.copysign(MIN_DW, dir_local[:, 2] + 1e-30), dir_local[:, 2])
    slope = dir_local[:, :2] / dw[:, None]  # du/dw, dv/dw
    half = 0.5 * t[:, None] * slope
    p0 = local[:, :2] - half  # entry (w = -t/2)
    p1 = local[:, :2] + half  # exit (w = +t/2)
    length3 = t * np.sqrt(1.0 + (slope**2).sum(axis=1))  # 3-D path length through the module
    pu, pv = det.pitch[module, 0], det.pitch[module, 1]
    ou, ov = -det.maxhu[module], -det.hv[module]
    hu_, tu = _grid_crossings(p0[:, 0], p1[:, 0], ou, pu)
    hv_, tv = _grid_crossings(p0[:, 1], p1[:, 1], ov, pv)
    hit = np.concatenate([np.arange(h), np.arange(h), hu_, hv_])
    tau = np.concatenate([np.zeros(h), np.ones(h), tu, tv])
    o = np.lexsort((tau, hit))
    hit, tau = hit[o], tau[o]
    same = hit[1:] == hit[:-1]
    seg_hit = hit[:-1][same]
    dt = (tau[1:] - tau[:-1])[same]
    tm = (0.5 * (tau[1:] + tau[:-1]))[same]
    keep = dt > 1e-12
    seg_hit, dt, tm = seg_hit[keep], dt[keep], tm[keep]
    mu = p0[seg_hit, 0] + tm * (p1[seg_hit, 0] - p0[seg_hit, 0])
    mv = p0[seg_hit, 1] + tm * (p1[seg_hit, 1] - p0[seg_hit, 1])
    m = module[seg_hit]
    c0 = np.floor((mu + det.maxhu[m]) / det.pitch[m, 0]).astype(np.int64)
    c1 = np.floor((mv + det.hv[m]) / det.pitch[m, 1]).astype(np.int64)
    n0 = np.ceil(2 * det.maxhu[m] / det.pitch[m, 0] - 1e-9).astype(np.int64)
    n1 = np.ceil(2 * det.hv[m] / det.pitch[m, 1] - 1e-9).astype(np.int64)
    inside = (c0 >= 0) & (c0 < n0) & (c1 >= 0) & (c1 < n1)
    seg_hit, c0, c1, value = seg_hit[inside], c0[inside], c1[inside], (dt * length3[seg_hit] * DEDX)[inside]
    # a hit whose every piece fell outside the module (an edge crossing): one cell at the clipped point
    lost = np.setdiff1d(np.arange(h), seg_hit)
    if len(lost):
        ml = module[lost]
        l0 = np.clip(np.floor((local[lost, 0] + det.maxhu[ml]) / det.pitch[ml, 0]), 0,
                     np.ceil(2 * det.maxhu[ml] / det.pitch[ml, 0]) - 1).astype(np.int64)
        l1 = np.clip(np.floor((local[lost, 1] + det.hv[ml]) / det.pitch[ml, 1]), 0,
                     np.ceil(2 * det.hv[ml] / det.pitch[ml, 1]) - 1).astype(np.int64)
        seg_hit = np.concatenate([seg_hit, lost])
        c0, c1 = np.concatenate([c0, l0]), np.concatenate([c1, l1])
        value = np.concatenate([value, length3[lost] * DEDX])
        o = np.argsort(seg_hit, kind="stable")
        seg_hit, c0, c1, value = seg_hit[o], c0[o], c1[o], value[o]
    # measured position: charge-weighted centroid of the cell centres, kept inside the module
    mm = module[seg_hit]
    cu = -det.maxhu[mm] + (c0 + 0.5) * det.pitch[mm, 0]
    cv = -det.hv[mm] + (c1 + 0.5) * det.pitch[mm, 1]
    wsum = np.bincount(seg_hit, value, minlength=h)
    meas = np.stack([np.bincount(seg_hit, value * cu, minlength=h), np.bincount(seg_hit, value * cv, minlength=h)], 1)
    meas /= np.maximum(wsum, 1e-30)[:, None]
    meas[:, 1] = np.clip(meas[:, 1], -det.hv[module], det.hv[module])
    hu_lim = det.half_u(module, meas[:, 1])
    meas[:, 0] = np.clip(meas[:, 0], -hu_lim, hu_lim)
    return Cells(seg_hit, c0, c1, value), meas
