""""Delphes-lite": a parametric CMS-like detector layer turning final-state particles into E-flow candidates.

Every number below is taken from the public Delphes CMS card ``cards/delphes_card_CMS.tcl`` of
Delphes 3.5.0 (github.com/delphes/delphes, tag 3.5.0; the module name is given at each number) or,
for impact parameters, from ``cards/trackResolutionCMS.tcl`` of the same repository, which tabulates
CMS tracker resolutions from arXiv:1405.6569 (Fig. 15). The algorithm is re-implemented here in
vectorised numpy; it follows Delphes' logic (tracking efficiency -> momentum smearing -> ECAL/HCAL
towers -> E-flow neutral excess) with the simplifications listed in docs/datagen.md:
  * no track-to-tower rescaling when a tower's neutral excess is not significant;
  * charged particles reach the calorimeter bent by a uniform 3.8 T field over the barrel radius
    (phi shift only); those with pT below the looping threshold deposit nothing;
  * straight-line impact parameters w.r.t. a point-like beam spot at the origin, Gaussian-smeared.

All randomness comes from a ``numpy.random.Generator`` handed in by the caller (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# particle types of the output candidates (index into the part_is* flags)
CH_HAD, NEU_HAD, PHOTON, ELECTRON, MUON = 0, 1, 2, 3, 4

# --------------------------------------------------------------------------- magnetic field / geometry
BZ_T = 3.8  # ParticlePropagator: Bz 3.8
CALO_RADIUS_M = 1.29  # ParticlePropagator: Radius 1.29
PT_LOOPER = 0.3 * BZ_T * CALO_RADIUS_M / 2.0  # GeV: below this a track curls up before the calorimeter
TRACKER_ETA_MAX = 2.5  # *TrackingEfficiency: efficiency 0 for |eta| > 2.5

# --------------------------------------------------------------------------- impact parameters
# trackResolutionCMS.tcl (from arXiv:1405.6569 Fig. 15): sigma(d0), sigma(dz) in mm in three |eta|
# regions [0, 0.9], (0.9, 1.4], (1.4, 2.5]; sampled at the pT bins containing these values (GeV).
IP_PT = np.array([0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 135.0])
IP_ETA_EDGES = np.array([0.9, 1.4])
D0_RES_MM = np.array([
    [0.3543, 0.1434, 0.0753, 0.0524, 0.0283, 0.0191, 0.0143, 0.0110, 0.0110],
    [0.4564, 0.1595, 0.0926, 0.0553, 0.0313, 0.0214, 0.0141, 0.0101, 0.0095],
    [0.6970, 0.2788, 0.1557, 0.0914, 0.0425, 0.0256, 0.0196, 0.0144, 0.0137],
])
DZ_RES_MM = np.array([
    [0.3693, 0.1936, 0.1113, 0.0786, 0.0484, 0.0382, 0.0316, 0.0316, 0.0318],
    [0.7062, 0.3199, 0.1982, 0.1199, 0.0707, 0.0511, 0.0408, 0.0342, 0.0310],
    [2.1717, 1.1997, 0.6695, 0.3711, 0.1816, 0.1117, 0.0983, 0.0817, 0.0850],
])


def ip_resolution(pt: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigma_d0, sigma_dz) in mm: log-log interpolation in pT of the CMS table, constant outside."""
    region = np.searchsorted(IP_ETA_EDGES, np.abs(eta), side="left")
    lpt = np.log(np.clip(pt, IP_PT[0], IP_PT[-1]))
    lx = np.log(IP_PT)
    sd0 = np.empty(len(pt))
    sdz = np.empty(len(pt))
    for r in range(3):
        m = region == r
        sd0[m] = np.exp(np.interp(lpt[m], lx, np.log(D0_RES_MM[r])))
        sdz[m] = np.exp(np.interp(lpt[m], lx, np.log(DZ_RES_MM[r])))
    return sd0, sdz


def true_impact_parameters(vx, vy, vz, px, py, pz):
    """Signed transverse (d0) and longitudinal (dz) impact parameters of a straight line, mm."""
    pt2 = px * px + py * py
    pt = np.sqrt(pt2)
    d0 = (vx * py - vy * px) / pt
    dz = vz - (vx * px + vy * py) / pt2 * pz
    return d0, dz


# --------------------------------------------------------------------------- tracking
def tracking_efficiency(pt, eta, kind):
    """*TrackingEfficiency modules of the card (charged hadrons / electrons / muons)."""
    a = np.abs(eta)
    barrel = a <= 1.5
    soft = pt <= 1.0
    eff = np.where(barrel, np.where(soft, 0.70, 0.95), np.where(soft, 0.60, 0.85))  # ChargedHadronTrackingEfficiency
    ele = np.where(barrel, np.where(soft, 0.73, np.where(pt <= 100, 0.95, 0.99)),
                   np.where(soft, 0.50, np.where(pt <= 100, 0.83, 0.90)))  # ElectronTrackingEfficiency
    mu = np.where(barrel, np.where(soft, 0.75, 0.99), np.where(soft, 0.70, 0.98))  # MuonTrackingEfficiency
    mu = np.where(pt > 1000, mu * np.exp(0.5 - pt * 5.0e-4), mu)
    eff = np.where(kind == ELECTRON, ele, np.where(kind == MUON, mu, eff))
    return np.where((pt <= 0.1) | (a > TRACKER_ETA_MAX), 0.0, eff)


def track_pt_resolution(pt, eta, kind):
    """Relative pT resolution, *MomentumSmearing modules of the card."""
    a = np.abs(eta)
    reg = np.searchsorted(np.array([0.5, 1.5]), a, side="left")  # |eta| <= 0.5, <= 1.5, <= 2.5
    c_h = np.array([[0.06, 1.3e-3], [0.10, 1.7e-3], [0.25, 3.1e-3]])  # ChargedHadronMomentumSmearing
    c_e = np.array([[0.03, 1.3e-3], [0.05, 1.7e-3], [0.15, 3.1e-3]])  # ElectronMomentumSmearing
    c_m = np.array([[0.01, 1.0e-4], [0.015, 1.5e-4], [0.025, 3.5e-4]])  # MuonMomentumSmearing
    reg = np.minimum(reg, 2)
    c = np.where((kind == ELECTRON)[:, None], c_e[reg], np.where((kind == MUON)[:, None], c_m[reg], c_h[reg]))
    return np.minimum(np.sqrt(c[:, 0] ** 2 + (pt * c[:, 1]) ** 2), 1.0)


def lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Log-normal smearing with the given mean and standard deviation (as Delphes does)."""
    mean = np.asarray(mean, dtype=float)
    out = np.zeros_like(mean)
    pos = mean > 0
    b = np.sqrt(np.log1p((sigma[pos] / mean[pos]) ** 2))
    a = np.log(mean[pos]) - 0.5 * b * b
    out[pos] = np.exp(a + b * rng.standard_normal(pos.sum()))
    return out


def lepton_id_efficiency(pt, eta, kind):
    """ElectronEfficiency / MuonEfficiency modules (isolation is not applied inside jets)."""
    a = np.abs(eta)
    e_eff = np.where(pt <= 10.0, 0.0, np.where(a <= 1.5, 0.95, np.where(a <= 2.5, 0.85, 0.0)))
    m_eff = np.where(pt <= 10.0, 0.0, np.where(a <= 2.4, 0.95, 0.0))
    return np.where(kind == ELECTRON, e_eff, np.where(kind == MUON, m_eff, 0.0))


# --------------------------------------------------------------------------- calorimeters
def _edges(groups: list[tuple[list[float], int]]) -> tuple[np.ndarray, np.ndarray]:
    """Merge Delphes-style (eta edges, n_phi) lists: bin (e[i], e[i+1]) uses the n_phi of e[i+1]."""
    table: dict[float, int] = {}
    for etas, nphi in groups:
        for x in etas:
            table[round(float(x), 4)] = nphi
    e = np.array(sorted(table))
    return e, np.array([table[x] for x in e[1:]])


_HF = [-5, -4.7, -4.525, -4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.958,
       3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35, 4.525, 4.7, 5]
# ECal: 0.0174 in eta x 1 degree in phi for |eta| < 3 (barrel + endcap), HF 0.175 x 10 degrees
ECAL_EDGES, ECAL_NPHI = _edges([
    ([i * 0.0174 for i in range(-85, 87)], 360),
    ([-2.958 + i * 0.0174 for i in range(1, 85)] + [1.4964 + i * 0.0174 for i in range(1, 85)], 360),
    (_HF, 36),
])
# HCal: 0.087 x 5 degrees for |eta| < 1.6, 10 degrees up to |eta| ~ 4.5, 20 degrees beyond
HCAL_EDGES, HCAL_NPHI = _edges([
    ([round(i * 0.087, 3) for i in range(-18, 20)], 72),
    ([-4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.95, -2.868, -2.65, -2.5, -2.322, -2.172,
      -2.043, -1.93, -1.83, -1.74, -1.653, 1.74, 1.83, 1.93, 2.043, 2.172, 2.322, 2.5, 2.65, 2.868, 2.95,
      3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35, 4.525], 36),
    ([-5, -4.7, -4.525, 4.7, 5], 18),
])


def ecal_resolution(e, eta):
    """ECal ResolutionFormula (GeV)."""
    a = np.abs(eta)
    stoch = np.sqrt(e * e * 0.008**2 + e * 0.11**2 + 0.40**2)
    return np.where(a <= 1.5, (1 + 0.64 * eta * eta) * stoch,
                    np.where(a <= 2.5, (2.16 + 5.6 * (a - 2) ** 2) * stoch,
                             np.sqrt(e * e * 0.107**2 + e * 2.08**2)))


def hcal_resolution(e, eta):
    """HCal ResolutionFormula (GeV)."""
    return np.where(np.abs(eta) <= 3.0, np.sqrt(e * e * 0.050**2 + e * 1.50**2),
                    np.sqrt(e * e * 0.130**2 + e * 2.70**2))


ECAL_EMIN, ECAL_SIGMIN = 0.5, 2.0  # ECal: EnergyMin 0.5, EnergySignificanceMin 2.0
HCAL_EMIN, HCAL_SIGMIN = 1.0, 1.0  # HCal: EnergyMin 1.0, EnergySignificanceMin 1.0


def calo_fractions(pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ECAL, HCAL) energy fractions by |PDG id| (EnergyFraction entries of ECal / HCal)."""
    a = np.abs(pid)
    em = np.isin(a, (11, 22, 111))
    invisible = np.isin(a, (12, 13, 14, 16))
    v0 = np.isin(a, (310, 3122))
    fe = np.where(em, 1.0, np.where(v0, 0.3, 0.0))
    fh = np.where(em | invisible, 0.0, np.where(v0, 0.7, 1.0))
    return fe, fh


@dataclass
class Candidates:
    """Flat E-flow candidates of a batch (one row per candidate, ``evt`` = event index)."""

    evt: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    charge: np.ndarray
    kind: np.ndarray
    d0: np.ndarray
    d0err: np.ndarray
    dz: np.ndarray
    dzerr: np.ndarray

    @staticmethod
    def concat(parts: list["Candidates"]) -> "Candidates":
        f = Candidates.__dataclass_fields__
        return Candidates(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in f})

    def take(self, idx) -> "Candidates":
        return Candidates(**{k: getattr(self, k)[idx] for k in Candidates.__dataclass_fields__})


def particle_kind(pid: np.ndarray, charge: np.ndarray) -> np.ndarray:
    a = np.abs(pid)
    return np.where(a == 11, ELECTRON, np.where(a == 13, MUON, np.where(a == 22, PHOTON,
                    np.where(charge != 0, CH_HAD, NEU_HAD)))).astype(np.int8)


def generator_level(b) -> Candidates:
    """No detector: every visible final-state particle is a candidate with its true impact parameters
    (charged only) and the error the tracker model would assign (so d0/d0err stays meaningful)."""
    kind = particle_kind(b.pid, b.charge)
    charged = b.charge != 0
    pt = np.hypot(b.px, b.py)
    eta = np.arcsinh(b.pz / pt)
    d0, dz = true_impact_parameters(b.vx, b.vy, b.vz, b.px, b.py, b.pz)
    sd0, sdz = ip_resolution(pt, eta)
    z = np.zeros(len(pt))
    return Candidates(b.evt, b.px, b.py, b.pz, b.e, b.charge.astype(float), kind,
                      np.where(charged, d0, z), np.where(charged, sd0, z),
                      np.where(charged, dz, z), np.where(charged, sdz, z))


def _towers(rng, evt, eta, phi, dep, trk_e, trk_s2, edges, nphi, resol, emin, sigmin, kind):
    """Sum deposits into towers, smear, apply thresholds, return neutral E-flow towers (Candidates)."""
    ib = np.searchsorted(edges, eta, side="right") - 1
    inside = (ib >= 0) & (ib < len(nphi)) & ((dep > 0) | (trk_e > 0))
    evt, eta, phi, dep, trk_e, trk_s2, ib = (x[inside] for x in (evt, eta, phi, dep, trk_e, trk_s2, ib))
    n = nphi[ib]
    ip = np.minimum(np.floor((phi + np.pi) / (2 * np.pi) * n).astype(np.int64), n - 1)
    key = evt.astype(np.int64) * 1_000_000 + ib.astype(np.int64) * 1000 + ip
    uk, inv = np.unique(key, return_inverse=True)
    e_true = np.bincount(inv, dep, len(uk))
    e_trk = np.bincount(inv, trk_e, len(uk))
    s_trk = np.sqrt(np.bincount(inv, trk_s2, len(uk)))
    t_evt = uk // 1_000_000
    t_ib = (uk // 1000) % 1000
    t_ip = uk % 1000
    lo, hi = edges[t_ib], edges[t_ib + 1]
    ceta = 0.5 * (lo + hi)
    e_meas = lognormal(rng, e_true, resol(e_true, ceta))
    sig = resol(e_meas, ceta)
    e_meas = np.where((e_meas < emin) | (e_meas < sigmin * sig), 0.0, e_meas)
    neutral = np.maximum(e_meas - e_trk, 0.0)
    nsig = neutral / np.sqrt(s_trk**2 + sig**2)
    keep = (neutral > emin) & (nsig > sigmin)
    # tower position smeared uniformly inside the cell (SmearTowerCenter true)
    u = rng.random((len(uk), 2))
    nt = nphi[t_ib]
    t_eta = lo + u[:, 0] * (hi - lo)
    t_phi = -np.pi + (t_ip + u[:, 1]) * (2 * np.pi / nt)
    t_eta, t_phi, en, t_evt = t_eta[keep], t_phi[keep], neutral[keep], t_evt[keep]
    pt = en / np.cosh(t_eta)
    z = np.zeros(len(en))
    return Candidates(t_evt, pt * np.cos(t_phi), pt * np.sin(t_phi), pt * np.sinh(t_eta), en, z,
                      np.full(len(en), kind, np.int8), z, z, z, z)


def apply_detector(b, rng: np.random.Generator, *, lepton_id: bool = True) -> Candidates:
    """E-flow candidates (tracks + neutral ECAL/HCAL towers) of a :class:`~partx.datagen.events.Batch`."""
    kind = particle_kind(b.pid, b.charge)
    charged = b.charge != 0
    pt = np.hypot(b.px, b.py)
    eta = np.arcsinh(b.pz / pt)
    phi = np.arctan2(b.py, b.px)
    p2 = b.px**2 + b.py**2 + b.pz**2
    m2 = np.maximum(b.e**2 - p2, 0.0)

    # --- tracks
    eff = tracking_efficiency(pt, eta, kind)
    tracked = charged & (rng.random(len(pt)) < eff)
    res = track_pt_resolution(pt, eta, kind)
    pt_s = np.where(tracked, lognormal(rng, pt, res * pt), pt)
    scale = pt_s / pt
    tpx, tpy, tpz = b.px * scale, b.py * scale, b.pz * scale
    te = np.sqrt(tpx**2 + tpy**2 + tpz**2 + m2)
    d0t, dzt = true_impact_parameters(b.vx, b.vy, b.vz, b.px, b.py, b.pz)
    sd0, sdz = ip_resolution(pt_s, eta)
    d0m = d0t + sd0 * rng.standard_normal(len(pt))
    dzm = dzt + sdz * rng.standard_normal(len(pt))
    tkind = kind.copy()
    if lepton_id:
        lep = (kind == ELECTRON) | (kind == MUON)
        failed = lep & (rng.random(len(pt)) >= lepton_id_efficiency(pt_s, eta, kind))
        tkind[failed] = CH_HAD
    t = np.flatnonzero(tracked)
    tracks = Candidates(b.evt[t], tpx[t], tpy[t], tpz[t], te[t], b.charge[t].astype(float), tkind[t],
                        d0m[t], sd0[t], dzm[t], sdz[t])

    # --- calorimeters: position at the calorimeter face (charged: bent in phi; loopers lost)
    reach = ~charged | (pt > PT_LOOPER)
    bend = np.where(charged & reach, -b.charge * np.arcsin(np.minimum(PT_LOOPER / np.maximum(pt, 1e-9), 1.0)), 0.0)
    cphi = np.mod(phi + bend + np.pi, 2 * np.pi) - np.pi
    fe, fh = calo_fractions(b.pid)
    r = np.flatnonzero(reach)
    tr = tracked[r]
    out = [tracks]
    for frac, edges, nphi, resol, emin, smin, k in (
        (fe, ECAL_EDGES, ECAL_NPHI, ecal_resolution, ECAL_EMIN, ECAL_SIGMIN, PHOTON),
        (fh, HCAL_EDGES, HCAL_NPHI, hcal_resolution, HCAL_EMIN, HCAL_SIGMIN, NEU_HAD),
    ):
        dep = b.e[r] * frac[r]
        trk_e = np.where(tr, te[r] * frac[r], 0.0)
        trk_s2 = np.where(tr, (res[r] * te[r] * frac[r]) ** 2, 0.0)
        out.append(_towers(rng, b.evt[r], eta[r], cphi[r], dep, trk_e, trk_s2, edges, nphi, resol, emin, smin, k))
    return Candidates.concat(out)
