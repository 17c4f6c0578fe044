"""Jet finding, truth matching and JetClass branch filling for one batch of events.

anti-kT R = 0.8 on the candidates of each event (E-flow candidates, or visible final-state particles
at generator level), 500 < pT < 1000 GeV, |eta| < 2. A signal jet is kept when it lies within
dR < 0.8 of the resonance's last copy and every visible decay product (quarks, gluons, charged
leptons, taus; not neutrinos) lies within dR < 0.8 of the jet axis. QCD jets need no match.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from partx.datagen.detector import Candidates

JET_R = 0.8
PT_MIN, PT_MAX, ETA_MAX = 500.0, 1000.0, 2.0


def delta_phi(a, b):
    return np.mod(np.asarray(a) - np.asarray(b) + np.pi, 2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2):
    return np.hypot(np.asarray(eta1) - np.asarray(eta2), delta_phi(phi1, phi2))


def _cluster(c: Candidates, n_events: int, r: float = JET_R, min_pt: float = PT_MIN - 50.0):
    """anti-kT jets of radius ``r`` with pT > ``min_pt`` per event: (jets record array, constituent indices).

    ``c``: anything with flat ``px, py, pz, e`` and an event index ``evt`` sorted ascending (Candidates, Batch).
    """
    import fastjet

    counts = np.bincount(c.evt, minlength=n_events)
    arr = ak.unflatten(ak.zip({"px": c.px, "py": c.py, "pz": c.pz, "E": c.e}), counts)
    cs = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, r))
    return cs.inclusive_jets(min_pt=min_pt), cs.constituent_index(min_pt=min_pt)


def select_jets(c: Candidates, batch, *, qcd: bool) -> list[dict]:
    """Jets of one batch passing kinematics and matching, each as a dict of per-jet arrays."""
    order = np.argsort(c.evt, kind="stable")
    c = c.take(order)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(c.evt, minlength=batch.n_events))])
    jets, cidx = _cluster(c, batch.n_events)
    njet = ak.to_numpy(ak.num(jets))
    if njet.sum() == 0:
        return []
    jev = np.repeat(np.arange(batch.n_events), njet)
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(jets[k])) for k in ("px", "py", "pz", "E"))
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / jpt)
    jphi = np.arctan2(jpy, jpx)
    ok = (jpt > PT_MIN) & (jpt < PT_MAX) & (np.abs(jeta) < ETA_MAX)
    flat_cidx = ak.flatten(cidx)  # one list of constituent indices per jet, same order as jets
    out = []
    for k in np.flatnonzero(ok):
        ev = int(jev[k])
        truths = batch.truth[ev]
        if qcd:
            gps = truths
        else:
            gps = []
            for gp in truths:
                if not gp.ok or delta_r(jeta[k], jphi[k], gp.eta[0], gp.phi[0]) >= JET_R:
                    continue
                if np.all(delta_r(jeta[k], jphi[k], gp.eta[gp.visible], gp.phi[gp.visible]) < JET_R):
                    gps = [gp]
                    break
            if not gps:
                continue
        idx = offsets[ev] + ak.to_numpy(flat_cidx[k]).astype(np.int64)
        out.append(_fill(c.take(idx), jpt[k], jeta[k], jphi[k], je[k], gps))
    return out


def _fill(p: Candidates, jpt, jeta, jphi, je, gps) -> dict:
    pt = np.hypot(p.px, p.py)
    o = np.argsort(-pt, kind="stable")
    p = p.take(o)
    pt = pt[o]
    eta = np.arcsinh(p.pz / pt)
    phi = np.arctan2(p.py, p.px)
    sgn = 1.0 if jeta >= 0 else -1.0
    if gps:
        g_eta = np.concatenate([g.eta for g in gps])
        g_phi = np.concatenate([g.phi for g in gps])
        g_pt = np.concatenate([g.pt for g in gps])
        g_pid = np.concatenate([g.pid for g in gps]).astype(np.float64)
    else:
        g_eta = g_phi = g_pt = g_pid = np.zeros(0)
    return {
        "part_px": p.px, "part_py": p.py, "part_pz": p.pz, "part_energy": p.e,
        "part_deta": (eta - jeta) * sgn, "part_dphi": delta_phi(phi, jphi),
        "part_d0val": p.d0, "part_d0err": p.d0err, "part_dzval": p.dz, "part_dzerr": p.dzerr,
        "part_charge": p.charge,
        "part_isChargedHadron": (p.kind == 0).astype(np.int32),
        "part_isNeutralHadron": (p.kind == 1).astype(np.int32),
        "part_isPhoton": (p.kind == 2).astype(np.int32),
        "part_isElectron": (p.kind == 3).astype(np.int32),
        "part_isMuon": (p.kind == 4).astype(np.int32),
        "jet_pt": jpt, "jet_eta": jeta, "jet_phi": jphi, "jet_energy": je, "jet_nparticles": float(len(pt)),
        "aux_genpart_eta": g_eta, "aux_genpart_phi": g_phi, "aux_genpart_pid": g_pid, "aux_genpart_pt": g_pt,
        "aux_truth_match": delta_r(jeta, jphi, g_eta, g_phi) < JET_R,
    }
