"""A TrackML-like silicon tracker built from planar modules, and its ``detectors.csv`` (TrackML's format).

Layout (mm; volume ids and radii / disk positions as in the TrackML detector, arXiv:1904.06778):

=======  ==============  =========================  ==================  ============  ================  =====
volume   kind            layers (layer_id: r or z)  extent              module (u×v)  pitch u × v       t
=======  ==============  =========================  ==================  ============  ================  =====
8        pixel barrel    2,4,6,8: r 32,72,116,172   |z| < 491           16.8 × 72     50 × 56.25 µm     0.15
7 / 9    pixel endcaps   2..14: |z| 600..1500 (7)   r 30 – 174, 2 rings trapezoids    50 × 56.25 µm     0.15
13       short strips    2,4,6,8: r 260,360,500,660 |z| < 1080          48 × 108      80 µm × 1.2 mm    0.25
12 / 14  short strip EC  2..12: |z| 1220..2950 (6)  r 236 – 700         trapezoids    80 µm × 1.2 mm    0.25
17       long strips     2,4: r 820, 1020           |z| < 1080          48 × 108      120 µm × 10.8 mm  0.35
16 / 18  long strip EC   2..12: |z| 1220..2950 (6)  r 720 – 1020        trapezoids    120 µm × 10.4 mm  0.35
=======  ==============  =========================  ==================  ============  ================  =====

Barrel module sizes, thicknesses, pitches and disk positions are those of the real TrackML
``detectors.csv`` (as shipped in Graph-COM/HEPT ``data/tracking/raw/preprocessing/detector_kaggle.csv``).
The tiling is ours and deliberately tighter: neighbouring modules overlap by 5 % (the real pixel
modules overlap far more, e.g. 16 staves of 16.8 mm on the 201 mm circumference of the first layer,
and its rectangular disk modules crowd the inner rings). With this tiling the event-level numbers match
the published real ones (~100k hits, ~55-60k pixel hits, ~10 hits per particle at μ = 200); with the real
file (``--detectors``) the same events give ~35 % more hits, mostly second hits on overlapping modules.
See docs/trackml_datagen.md.

Layer ids count in steps of 2 from 2 as in TrackML; endcap layers are numbered in increasing z (so on
the -z side, volumes 7 / 12 / 16, layer 2 is the outermost disk). Barrel modules are tangent planes
(w radial, u along φ, v along z) tiled in φ with ~5 % overlap, neighbours staggered ±1 mm (pixels) /
±2 mm (strips) in radius so that overlapping modules do not intersect; endcap modules are trapezoids
(v radial) in rings, staggered in z the same way. A module's frame: ``global = c + rot @ (u, v, w)``,
|u| < minhu..maxhu (linear in v), |v| < hv, |w| < module_t / 2.

``Detector`` also carries the per-layer material (fraction of a radiation length crossed at normal
incidence, lumped on the layer's reference surface) used for multiple scattering; with a real TrackML
``detectors.csv`` (``Detector.from_csv``) the layers are derived from the modules and the material is
taken per volume from ``MATERIAL``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from partx.datagen.trackml import schema

#: x / X0 per layer at normal incidence (module + services, lumped): our choice, documented in docs/
MATERIAL = {7: 0.015, 8: 0.015, 9: 0.015, 12: 0.025, 13: 0.025, 14: 0.025, 16: 0.03, 17: 0.03, 18: 0.03}
#: beam pipe (0.8 mm beryllium, X0 = 353 mm) at r = 25 mm: scattering only, no hits
BEAM_PIPE = (25.0, 0.8 / 353.0)


@dataclass(frozen=True)
class BarrelSpec:
    volume: int
    radii: tuple[float, ...]
    zmax: float
    hu: float
    hv: float
    t: float
    pitch_u: float
    pitch_v: float
    stagger: float


@dataclass(frozen=True)
class EndcapSpec:
    volumes: tuple[int, int]  # (-z side, +z side)
    z: tuple[float, ...]
    rmin: float
    rmax: float
    hv: float  # radial half-length of a ring's modules (upper bound; rings are spread evenly)
    max_hu: float  # largest half-width in u of a trapezoid (or the half-width of a rectangle)
    t: float
    pitch_u: float
    pitch_v: float
    stagger: float
    trapezoid: bool = True


PIXEL_PITCH = (0.05, 0.05625)
BARRELS = (
    BarrelSpec(8, (32.0, 72.0, 116.0, 172.0), 491.0, 8.4, 36.0, 0.15, *PIXEL_PITCH, 1.0),
    BarrelSpec(13, (260.0, 360.0, 500.0, 660.0), 1080.0, 24.0, 54.0, 0.25, 0.08, 1.2, 2.0),
    BarrelSpec(17, (820.0, 1020.0), 1080.0, 24.0, 54.0, 0.35, 0.12, 10.8, 2.0),
)
_STRIP_DISKS = (1220.0, 1500.0, 1800.0, 2150.0, 2550.0, 2950.0)
ENDCAPS = (
    EndcapSpec((7, 9), (600.0, 700.0, 820.0, 960.0, 1100.0, 1300.0, 1500.0), 30.0, 174.0, 36.0, 9.0, 0.15,
               *PIXEL_PITCH, 1.0),
    EndcapSpec((12, 14), _STRIP_DISKS, 236.0, 700.0, 78.0, 32.0, 0.25, 0.08, 1.2, 2.0),
    EndcapSpec((16, 18), _STRIP_DISKS, 720.0, 1020.0, 78.0, 68.0, 0.35, 0.12, 10.4, 2.0),
)
_OVERLAP = 1.05  # modules 5 % longer than the gap-free tiling (z in barrels, r in disks; φ in disks)
_PHI_OVERLAP = 1.05  # barrel modules per ring: 5 % more than gap-free (see the module docstring)


@dataclass
class Layer:
    """One barrel layer (cylinder ``r``, |z| < ``zmax``) or disk (plane ``z``, ``rmin`` < r < ``rmax``)."""

    volume: int
    layer: int
    barrel: bool
    r: float  # barrel: reference radius; disk: unused (0)
    z: float  # disk: reference z; barrel: unused (0)
    zmax: float
    rmin: float
    rmax: float
    x0: float  # x / X0 at normal incidence
    modules: np.ndarray = field(repr=False, default=None)  # row indices into Detector.modules


def _rot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotation matrices with columns u, v, w = u × v."""
    w = np.cross(u, v)
    return np.stack([u, v, w], axis=-1)


def _barrel_modules(spec: BarrelSpec) -> list[dict]:
    rows = []
    for li, r in enumerate(spec.radii):
        nphi = math.ceil(2 * math.pi * r / (2 * spec.hu / _PHI_OVERLAP))
        nphi += nphi % 2  # even, so the ±stagger alternates all round
        nz = math.ceil(2 * spec.zmax / (2 * spec.hv))
        zc = -spec.zmax + (np.arange(nz) + 0.5) * (2 * spec.zmax / nz)
        hv = spec.zmax / nz * _OVERLAP
        phi = (np.arange(nphi) + 0.5) * 2 * math.pi / nphi
        mid = 1
        for iz, z in enumerate(zc):
            rr = r + spec.stagger * np.where(np.arange(nphi) % 2 == 0, -1.0, 1.0) * (1 if iz % 2 == 0 else -1)
            cphi, sphi = np.cos(phi), np.sin(phi)
            u = np.stack([-sphi, cphi, np.zeros(nphi)], axis=1)
            v = np.tile([0.0, 0.0, 1.0], (nphi, 1))
            rot = _rot(u, v)
            for k in range(nphi):
                rows.append(dict(volume_id=spec.volume, layer_id=2 * (li + 1), module_id=mid,
                                 cx=rr[k] * cphi[k], cy=rr[k] * sphi[k], cz=z, rot=rot[k], module_t=spec.t,
                                 module_minhu=spec.hu, module_maxhu=spec.hu, module_hv=hv,
                                 pitch_u=spec.pitch_u, pitch_v=spec.pitch_v))
                mid += 1
    return rows


def _endcap_modules(spec: EndcapSpec) -> list[dict]:
    rows = []
    nr = math.ceil((spec.rmax - spec.rmin) / (2 * spec.hv))
    edges = np.linspace(spec.rmin, spec.rmax, nr + 1)
    zs = sorted([-z for z in spec.z] + list(spec.z))
    for zsigned in zs:
        vol = spec.volumes[0] if zsigned < 0 else spec.volumes[1]
        side = [z for z in zs if (z < 0) == (zsigned < 0)]
        layer = 2 * (side.index(zsigned) + 1)
        mid = 1
        for ir in range(nr):
            r0, r1 = edges[ir], edges[ir + 1]
            hv = (r1 - r0) / 2 * _OVERLAP
            rc = (r0 + r1) / 2
            nphi = math.ceil(math.pi * (rc + hv) / spec.max_hu * _OVERLAP)
            nphi += nphi % 2
            half = math.pi / nphi
            if spec.trapezoid:
                minhu = (rc - hv) * math.tan(half) * _OVERLAP
                maxhu = (rc + hv) * math.tan(half) * _OVERLAP
            else:
                minhu = maxhu = spec.max_hu
            phi = (np.arange(nphi) + 0.5 * (ir % 2)) * 2 * half
            cphi, sphi = np.cos(phi), np.sin(phi)
            u = np.stack([-sphi, cphi, np.zeros(nphi)], axis=1)
            v = np.stack([cphi, sphi, np.zeros(nphi)], axis=1)
            rot = _rot(u, v)
            dz = spec.stagger * np.where(np.arange(nphi) % 2 == 0, -1.0, 1.0) * (1 if ir % 2 == 0 else -1)
            for k in range(nphi):
                rows.append(dict(volume_id=vol, layer_id=layer, module_id=mid, cx=rc * cphi[k], cy=rc * sphi[k],
                                 cz=zsigned + dz[k], rot=rot[k], module_t=spec.t, module_minhu=minhu,
                                 module_maxhu=maxhu, module_hv=hv, pitch_u=spec.pitch_u, pitch_v=spec.pitch_v))
                mid += 1
    return rows


def build_modules() -> pd.DataFrame:
    """The toy detector's modules as a ``detectors.csv`` table (TrackML columns and dtypes)."""
    rows = []
    for b in BARRELS:
        rows += _barrel_modules(b)
    for e in ENDCAPS:
        rows += _endcap_modules(e)
    rot = np.stack([r.pop("rot") for r in rows])
    df = pd.DataFrame(rows)
    for i, a in enumerate("xyz"):
        for j, b in enumerate("uvw"):
            df[f"rot_{a}{b}"] = rot[:, i, j]
    df = df[list(schema.DETECTOR_DTYPES)].astype(schema.DETECTOR_DTYPES)
    return df.sort_values(["volume_id", "layer_id", "module_id"], kind="stable").reset_index(drop=True)


class Detector:
    """Modules (as numpy arrays) plus the layers derived from them, for propagation and hit finding.

    Args:
        modules: a ``detectors.csv`` table (``build_modules()`` or ``io.read_detectors(path)``).
    """

    def __init__(self, modules: pd.DataFrame):
        self.modules = modules.reset_index(drop=True)
        m = self.modules
        self.center = m[["cx", "cy", "cz"]].to_numpy(np.float64)  # (M, 3)
        self.rot = m[list(schema.ROT_COLUMNS)].to_numpy(np.float64).reshape(-1, 3, 3)  # (M, 3, 3) columns u v w
        self.t = m["module_t"].to_numpy(np.float64)
        self.minhu = m["module_minhu"].to_numpy(np.float64)
        self.maxhu = m["module_maxhu"].to_numpy(np.float64)
        self.hv = m["module_hv"].to_numpy(np.float64)
        self.pitch = m[["pitch_u", "pitch_v"]].to_numpy(np.float64)
        self.ids = m[["volume_id", "layer_id", "module_id"]].to_numpy(np.int32)
        self.layers = self._derive_layers()

    @classmethod
    def toy(cls) -> "Detector":
        return cls(build_modules())

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "Detector":
        from partx.datagen.trackml.io import read_detectors

        return cls(read_detectors(path))

    def half_u(self, idx: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Half-width in u of modules ``idx`` at local ``v`` (trapezoid: minhu at -hv, maxhu at +hv)."""
        f = (v + self.hv[idx]) / (2 * self.hv[idx])
        return self.minhu[idx] + (self.maxhu[idx] - self.minhu[idx]) * np.clip(f, 0.0, 1.0)

    def _derive_layers(self) -> list[Layer]:
        """Group modules by (volume, layer); a layer whose module normals point along z is a disk."""
        layers = []
        w = self.rot[:, :, 2]
        rc = np.hypot(self.center[:, 0], self.center[:, 1])
        # extent of a module from its centre: farthest corner distance (bounding, for the r / z ranges)
        reach = np.hypot(self.maxhu, self.hv)
        keys = self.ids[:, :2]
        order = np.lexsort((keys[:, 1], keys[:, 0]))
        bounds = np.flatnonzero(np.any(np.diff(keys[order], axis=0) != 0, axis=1)) + 1
        for grp in np.split(order, bounds):
            vol, lay = (int(x) for x in keys[grp[0]])
            disk = np.median(np.abs(w[grp, 2])) > 0.7
            x0 = MATERIAL.get(vol, 0.02)
            if disk:
                z = float(np.mean(self.center[grp, 2]))
                layers.append(Layer(vol, lay, False, 0.0, z, 0.0, float(max(0.0, (rc[grp] - reach[grp]).min())),
                                    float((rc[grp] + reach[grp]).max()), x0, grp))
            else:
                r = float(np.mean(rc[grp]))
                zmax = float((np.abs(self.center[grp, 2]) + reach[grp]).max())
                layers.append(Layer(vol, lay, True, r, 0.0, zmax, 0.0, 0.0, x0, grp))
        return layers

    @property
    def rmax(self) -> float:
        return max(float(np.hypot(self.center[:, 0], self.center[:, 1]).max() + np.hypot(self.maxhu, self.hv).max()), 0.0)

    @property
    def zmax(self) -> float:
        return float(np.abs(self.center[:, 2]).max() + np.hypot(self.maxhu, self.hv).max())

    def to_local(self, idx: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """(n, 3) global positions -> (n, 3) local (u, v, w) in modules ``idx``."""
        return np.einsum("nij,ni->nj", self.rot[idx], pos - self.center[idx])

    def to_global(self, idx: np.ndarray, loc: np.ndarray) -> np.ndarray:
        """(n, 3) local (u, v, w) in modules ``idx`` -> (n, 3) global positions."""
        return self.center[idx] + np.einsum("nij,nj->ni", self.rot[idx], loc)


def write_detectors(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a ``detectors.csv`` atomically (TrackML column order)."""
    from partx.datagen.trackml.writer import write_csv

    return write_csv(df[list(schema.DETECTOR_DTYPES)], path)
