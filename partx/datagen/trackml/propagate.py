"""Helix propagation of charged particles through the detector, vectorised over particles (numpy).

A particle in a uniform field B along z moves on a helix. Parametrised by its transverse path length s
(mm) from a state (x, y, z, direction angle φ, pT, pz, charge q), with signed curvature
κ = -q · 0.000299792458 · B / pT (1/mm; B in T, pT in GeV; a positive charge turns clockwise seen
from +z):

    φ(s) = φ + κ s,   (x, y)(s) = (x, y) + L(s) (cos(φ + κs/2), sin(φ + κs/2)),   z(s) = z + s pz / pT

with the chord L(s) = 2 sin(κs/2) / κ = s · sinc(κs/2), exact and well-conditioned at any pT.

Propagation is event driven: from its current state each particle moves to the nearest of (a) the next
layer cylinder in its radial direction of motion (solved by bracketed Newton on ρ(s)² = r²), (b) the next
disk plane in its z direction (linear in s), (c) the next extremum of its radius (turning point of a
looper); at a layer it records its intersections with that layer's module planes (Newton on
n · (x(s) - c) = 0 from the layer crossing, then the module bounds) and scatters (Highland, gaussian
in two projected angles, lumped on the layer's reference surface). It stops when it leaves the detector,
after ``max_half_turns`` radial turning points, or after ``max_steps`` events.
Not simulated: energy loss, secondaries / delta rays, decays in flight, hadronic interactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from partx.datagen.trackml.geometry import BEAM_PIPE, Detector

C_LIGHT = 0.299792458e-3  # GeV / (T · mm) per unit charge
B_FIELD = 2.0  # T, along +z
_EPS = 1e-6  # mm: a crossing closer than this to the current point is the one just handled
_K_CANDIDATES = 6  # nearest module centres tried per layer crossing
_MAX_S = 1e5  # mm: beyond any detector


@dataclass
class Particles:
    """Starting states, (n,) arrays: vertex (mm), momentum (GeV), charge (e), energy (GeV)."""

    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    q: np.ndarray
    e: np.ndarray


@dataclass
class Crossings:
    """Module intersections, one row per (particle, module) crossing, (h,) or (h, 3) arrays.

    ``pos``: true global position on the module mid-plane (mm); ``mom``: momentum there (GeV);
    ``dir_local``: unit direction in the module frame (u, v, w), for the cells.
    """

    particle: np.ndarray
    module: np.ndarray
    pos: np.ndarray
    mom: np.ndarray
    local: np.ndarray
    dir_local: np.ndarray
    order: np.ndarray  # (h,) float: increases along each particle's trajectory (time order of its hits)


def _advance(x, y, z, phi, kappa, cot, s):
    """Helix positions and direction angle after transverse path length ``s`` (all arrays)."""
    half = 0.5 * kappa * s
    with np.errstate(divide="ignore", invalid="ignore"):
        sinc = np.where(np.abs(half) > 1e-4, np.sin(half) / half, 1.0 - half * half / 6.0)
    chord = s * sinc
    mid = phi + half
    return x + chord * np.cos(mid), y + chord * np.sin(mid), z + s * cot, phi + 2 * half


def _radial_extremum(x, y, phi, kappa):
    """Transverse path length to the next extremum of the radius (inf for a straight line)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / kappa
        cx = x - np.sin(phi) * inv
        cy = y + np.cos(phi) * inv
        alpha = np.arctan2(cy, cx) + np.pi / 2
        d = np.mod(np.sign(kappa) * (alpha - phi), np.pi)
        d = np.where(d < 1e-9, d + np.pi, d)
        s = d / np.abs(kappa)
    return np.where(np.abs(kappa) > 1e-12, s, np.inf)


def _cylinder_crossing(x, y, phi, kappa, r, s_hi):
    """Smallest s in (0, s_hi] with ρ(s) = r, inf if none; ρ is monotonic on [0, s_hi] by construction."""
    n = len(x)
    f0 = x * x + y * y - r * r
    xh, yh, _, _ = _advance(x, y, 0.0, phi, kappa, 0.0, s_hi)
    fh = xh * xh + yh * yh - r * r
    ok = np.isfinite(r) & (np.sign(f0) != np.sign(fh)) & (s_hi > 0)
    out = np.full(n, np.inf)
    if not ok.any():
        return out
    x, y, phi, kappa, r, f0, hi = x[ok], y[ok], phi[ok], kappa[ok], r[ok], f0[ok], s_hi[ok].copy()
    lo = np.zeros_like(hi)
    # straight-line start: solve |p + s t|² = r²
    b = x * np.cos(phi) + y * np.sin(phi)
    disc = b * b - f0
    root = np.sqrt(np.maximum(disc, 0.0))
    s = np.where(f0 < 0, -b + root, -b - root)
    s = np.where((disc >= 0) & (s > lo) & (s < hi), s, 0.5 * (lo + hi))
    sign0 = np.sign(f0)
    res = np.empty_like(s)
    idx = np.arange(len(s))  # not yet converged (the arrays below are compacted to these)
    for it in range(60):
        xs, ys, _, ph = _advance(x, y, 0.0, phi, kappa, 0.0, s)
        f = xs * xs + ys * ys - r * r
        same = np.sign(f) == sign0
        lo = np.where(same, s, lo)
        hi = np.where(same, hi, s)
        df = 2.0 * (xs * np.cos(ph) + ys * np.sin(ph))
        with np.errstate(divide="ignore", invalid="ignore"):
            s_new = s - f / df
        bad = ~np.isfinite(s_new) | (s_new <= lo) | (s_new >= hi)
        s_new = np.where(bad, 0.5 * (lo + hi), s_new)
        done = (np.abs(s_new - s) < 1e-7) | (it == 59)
        res[idx[done]] = s_new[done]
        keep = ~done
        if not keep.any():
            break
        idx, s, lo, hi = idx[keep], s_new[keep], lo[keep], hi[keep]
        x, y, phi, kappa, r, sign0 = x[keep], y[keep], phi[keep], kappa[keep], r[keep], sign0[keep]
    s = res
    out[ok] = s
    return out


class Propagator:
    """Propagates :class:`Particles` through a :class:`Detector`.

    Args:
        det: the detector (modules and layers).
        b_field: solenoid field (T).
        scattering: apply multiple scattering (Highland) at each crossed layer.
        max_half_turns: stop a looper after this many radial turning points.
        max_steps: safety cap on propagation events per particle.
    """

    def __init__(self, det: Detector, b_field: float = B_FIELD, scattering: bool = True,
                 max_half_turns: int = 3, max_steps: int = 200):
        self.det, self.b, self.scattering = det, b_field, scattering
        self.max_half_turns, self.max_steps = max_half_turns, max_steps
        barrels = [(i, L) for i, L in enumerate(det.layers) if L.barrel]
        disks = [(i, L) for i, L in enumerate(det.layers) if not L.barrel]
        # cylinders: the barrel layers plus the beam pipe (material only, layer -1)
        cyl = sorted([(L.r, i, L.zmax, L.x0) for i, L in barrels] + [(BEAM_PIPE[0], -1, np.inf, BEAM_PIPE[1])])
        self.cyl_r = np.array([c[0] for c in cyl])
        self.cyl_layer = np.array([c[1] for c in cyl])
        self.cyl_zmax = np.array([c[2] for c in cyl])
        self.cyl_x0 = np.array([c[3] for c in cyl])
        # disk planes: layers sharing a z (pixel and strip disks may) are one plane, up to 2 layers each
        # (+inf sentinel: a detector without disks still indexes safely; a plane at infinity is never reached)
        zs = sorted({round(L.z, 6) for _, L in disks}) or [np.inf]
        self.disk_z = np.array(zs)
        self.disk_layers = np.full((len(zs), 2), -1)
        for i, L in disks:
            k = zs.index(round(L.z, 6))
            slot = 0 if self.disk_layers[k, 0] < 0 else 1
            self.disk_layers[k, slot] = i
        self.rmax, self.zmax = det.rmax, det.zmax
        self.layer_rmin = np.array([L.rmin for L in det.layers])
        self.layer_rmax = np.array([L.rmax for L in det.layers])
        self.layer_x0 = np.array([L.x0 for L in det.layers])
        self._trees = {i: cKDTree(det.center[L.modules]) for i, L in enumerate(det.layers)}

    # ------------------------------------------------------------------ public
    def run(self, p: Particles, rng: np.random.Generator) -> Crossings:
        """Propagate all particles; returns every module crossing (unsorted)."""
        n = len(p.px)
        x, y, z = p.vx.astype(np.float64), p.vy.astype(np.float64), p.vz.astype(np.float64)
        pt = np.hypot(p.px, p.py).astype(np.float64)
        pz = p.pz.astype(np.float64)
        ptot = np.hypot(pt, pz)
        beta = np.where(p.e > 0, ptot / np.maximum(p.e, 1e-12), 1.0)
        q = p.q.astype(np.float64)
        phi = np.arctan2(p.py, p.px).astype(np.float64)
        turns = np.zeros(n, dtype=np.int64)
        active = (q != 0) & (pt > 0)
        rec: list[tuple] = []
        for step in range(self.max_steps):
            a = np.flatnonzero(active)
            if len(a) == 0:
                break
            with np.errstate(divide="ignore"):
                kappa = -q[a] * C_LIGHT * self.b / pt[a]
                cot = pz[a] / pt[a]
            xa, ya, za, pha = x[a], y[a], z[a], phi[a]
            rho = np.hypot(xa, ya)
            s_ext = np.minimum(_radial_extremum(xa, ya, pha, kappa), _MAX_S)
            # radial direction of motion, read half-way to the next turning point (ρ is monotonic in
            # between; at a turning point itself the radial velocity is zero and its sign meaningless)
            xm, ym, _, phm = _advance(xa, ya, za, pha, kappa, cot, np.minimum(0.5 * s_ext, 1.0))
            outgoing = (xm * np.cos(phm) + ym * np.sin(phm)) >= 0
            # next cylinder in the radial direction of motion
            i_out = np.searchsorted(self.cyl_r, rho + _EPS, side="left")
            i_in = np.searchsorted(self.cyl_r, rho - _EPS, side="left") - 1
            ci = np.where(outgoing, i_out, i_in)
            has_c = (ci >= 0) & (ci < len(self.cyl_r))
            r_c = np.where(has_c, self.cyl_r[np.clip(ci, 0, len(self.cyl_r) - 1)], np.nan)
            s_cyl = _cylinder_crossing(xa, ya, pha, kappa, r_c, s_ext)
            # next disk plane in the z direction of motion
            dz_sign = np.sign(cot)
            j_up = np.searchsorted(self.disk_z, za + _EPS, side="left")
            j_dn = np.searchsorted(self.disk_z, za - _EPS, side="left") - 1
            dj = np.where(dz_sign > 0, j_up, j_dn)
            has_d = (dz_sign != 0) & (dj >= 0) & (dj < len(self.disk_z))
            z_d = self.disk_z[np.clip(dj, 0, len(self.disk_z) - 1)]
            with np.errstate(divide="ignore", invalid="ignore"):
                s_disk = np.where(has_d, (z_d - za) / cot, np.inf)
            s_next = np.minimum(np.minimum(s_cyl, s_disk), s_ext)
            kind = np.where(s_next == s_cyl, 0, np.where(s_next == s_disk, 1, 2))
            # no surface ahead within the detector: the particle leaves
            gone = ~np.isfinite(s_next) | (s_next >= _MAX_S)
            s_next = np.where(gone, 0.0, s_next)
            x1, y1, z1, ph1 = _advance(xa, ya, za, pha, kappa, cot, s_next)
            x[a], y[a], z[a], phi[a] = x1, y1, z1, ph1
            outside = gone | (np.hypot(x1, y1) > self.rmax) | (np.abs(z1) > self.zmax)
            # layers crossed at this step: (position in a, layer index)
            hit_a, hit_layer, hit_x0 = [], [], []
            cyl = (kind == 0) & ~outside
            if cyl.any():
                k = np.flatnonzero(cyl)
                cc = ci[k]
                inz = np.abs(z1[k]) <= self.cyl_zmax[cc]
                hit_a.append(k[inz])
                hit_layer.append(self.cyl_layer[cc[inz]])
                hit_x0.append(self.cyl_x0[cc[inz]])
            dsk = (kind == 1) & ~outside
            if dsk.any():
                k = np.flatnonzero(dsk)
                rr = np.hypot(x1[k], y1[k])
                for slot in (0, 1):
                    li = self.disk_layers[dj[k], slot]
                    valid = li >= 0
                    lic = np.clip(li, 0, None)
                    inr = valid & (rr >= self.layer_rmin[lic]) & (rr <= self.layer_rmax[lic])
                    hit_a.append(k[inr])
                    hit_layer.append(li[inr])
                    hit_x0.append(self.layer_x0[li[inr]])
            ext = (kind == 2) & ~outside
            # a turning point counts once the particle is out of the beam pipe (not a vertex just off axis)
            turns[a[ext & (np.hypot(x1, y1) > BEAM_PIPE[0])]] += 1
            ha = np.concatenate(hit_a) if hit_a else np.zeros(0, np.int64)
            hl = np.concatenate(hit_layer) if hit_layer else np.zeros(0, np.int64)
            hx = np.concatenate(hit_x0) if hit_x0 else np.zeros(0)
            if len(ha):
                mods = hl >= 0
                if mods.any():
                    rec.append(self._module_hits(a[ha[mods]], hl[mods], x, y, z, phi, pt, pz, q, step))
                if self.scattering:
                    # one scatter per particle per step (two disk layers at one z overlap only at their edge)
                    first = np.unique(ha, return_index=True)[1]
                    self._scatter(a[ha[first]], hx[first], x, y, phi, pt, pz, q, beta, ptot, rng,
                                  disk=np.isin(ha[first], np.flatnonzero(dsk)))
            active[a[outside]] = False
            active[a[turns[a] >= self.max_half_turns]] = False
        return _concat(rec)

    # ------------------------------------------------------------------ helpers
    def _module_hits(self, ip, layer, x, y, z, phi, pt, pz, q, step) -> tuple:
        """Intersections of particles ``ip`` (at their layer crossing) with the nearby modules of ``layer``."""
        det = self.det
        pairs_p, pairs_m = [], []
        for li in np.unique(layer):
            sel = ip[layer == li]
            mods = det.layers[li].modules
            k = min(_K_CANDIDATES, len(mods))
            _, nn = self._trees[li].query(np.stack([x[sel], y[sel], z[sel]], axis=1), k=k)
            nn = nn.reshape(len(sel), k)
            pairs_p.append(np.repeat(sel, k))
            pairs_m.append(mods[nn].ravel())
        pp = np.concatenate(pairs_p)
        mm = np.concatenate(pairs_m)
        kappa = -q[pp] * C_LIGHT * self.b / pt[pp]
        cot = pz[pp] / pt[pp]
        n = det.rot[mm][:, :, 2]  # module normals (w axis)
        c = det.center[mm]
        x0, y0, z0, ph0 = x[pp], y[pp], z[pp], phi[pp]
        s = np.zeros(len(pp))
        live = np.arange(len(pp))  # Newton on n · (x(s) - c) = 0; converged pairs leave the loop
        for _ in range(8):
            xs, ys, zs, ph = _advance(x0[live], y0[live], z0[live], ph0[live], kappa[live], cot[live], s[live])
            nl, cl = n[live], c[live]
            g = nl[:, 0] * (xs - cl[:, 0]) + nl[:, 1] * (ys - cl[:, 1]) + nl[:, 2] * (zs - cl[:, 2])
            dg = nl[:, 0] * np.cos(ph) + nl[:, 1] * np.sin(ph) + nl[:, 2] * cot[live]
            with np.errstate(divide="ignore", invalid="ignore"):
                ds = np.where(np.abs(dg) > 1e-9, g / dg, np.nan)
            s[live] -= ds
            # diverging (another module's plane far away) or converged: stop iterating
            live = live[np.isfinite(ds) & (np.abs(ds) > 1e-10) & (np.abs(s[live]) < 1e3)]
            if len(live) == 0:
                break
        xs, ys, zs, ph = _advance(x0, y0, z0, ph0, kappa, cot, s)
        pos = np.stack([xs, ys, zs], axis=1)
        ok = np.isfinite(s) & (np.abs(s) < 100.0)
        loc = det.to_local(mm, np.nan_to_num(pos))
        ok &= np.abs(loc[:, 2]) < 1e-5
        ok &= np.abs(loc[:, 1]) <= det.hv[mm]
        ok &= np.abs(loc[:, 0]) <= det.half_u(mm, loc[:, 1])
        # the same module may be reached twice only through duplicated candidates: keep one
        key = pp.astype(np.int64) * (len(det.t) + 1) + mm
        ok &= np.isin(np.arange(len(pp)), np.unique(np.where(ok, key, -1), return_index=True)[1])
        pp, mm, pos, loc, ph, s = pp[ok], mm[ok], pos[ok], loc[ok], ph[ok], s[ok]
        mom = np.stack([pt[pp] * np.cos(ph), pt[pp] * np.sin(ph), pz[pp]], axis=1)
        d = mom / np.linalg.norm(mom, axis=1, keepdims=True)
        dloc = np.einsum("nij,ni->nj", det.rot[mm], d)
        order = step * 1e4 + s  # time order along the trajectory: step, then path length (|s| < 100)
        return pp, mm, pos, mom, loc, dloc, order

    def _scatter(self, ip, x0frac, x, y, phi, pt, pz, q, beta, ptot, rng, disk):
        """Highland multiple scattering at a layer: rotate the direction by two gaussian angles."""
        d = np.stack([pt[ip] * np.cos(phi[ip]), pt[ip] * np.sin(phi[ip]), pz[ip]], axis=1) / ptot[ip, None]
        # path through the layer: x / X0 at normal incidence / |cos| of the angle to the layer normal
        rr = np.maximum(np.hypot(x[ip], y[ip]), 1e-9)
        cos_in = np.where(disk, np.abs(d[:, 2]), np.abs(d[:, 0] * x[ip] / rr + d[:, 1] * y[ip] / rr))
        xr = x0frac / np.maximum(cos_in, 0.05)
        qa = np.abs(q[ip])
        theta0 = 0.0136 / (beta[ip] * ptot[ip]) * qa * np.sqrt(xr) * (1 + 0.038 * np.log(xr * qa**2 / beta[ip] ** 2))
        # orthonormal basis perpendicular to d
        ref = np.where(np.abs(d[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
        e1 = np.cross(d, ref)
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(d, e1)
        t1 = rng.normal(size=len(ip)) * theta0
        t2 = rng.normal(size=len(ip)) * theta0
        dn = d + t1[:, None] * e1 + t2[:, None] * e2
        dn /= np.linalg.norm(dn, axis=1, keepdims=True)
        pt[ip] = ptot[ip] * np.hypot(dn[:, 0], dn[:, 1])
        pz[ip] = ptot[ip] * dn[:, 2]
        phi[ip] = np.arctan2(dn[:, 1], dn[:, 0])


def _concat(rec: list[tuple]) -> Crossings:
    if not rec:
        z3 = np.zeros((0, 3))
        return Crossings(np.zeros(0, np.int64), np.zeros(0, np.int64), z3, z3, z3, z3, np.zeros(0, np.int64))
    cols = list(zip(*rec))
    return Crossings(*(np.concatenate(c) for c in cols))
