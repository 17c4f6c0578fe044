"""Delphes-like particle-flow candidates of one HL-LHC bunch crossing: a tt̄ hard scatter + Poisson(μ) minimum bias.

The Pythia side is the TrackML generator's (``partx.datagen.trackml.events.EventSource``: 14 TeV, tt̄ via
``Top:gg2ttbar`` / ``Top:qqbar2ttbar``, ``SoftQCD:inelastic`` minimum bias with cached MPI tables,
c·τ0 > 10 mm stable so K0S, Λ, Ξ0 reach the detector as in HEPT's data, per-event reseeding from
(seed, event id), collision vertices z ~ N(0, 50 mm)); here every final-state particle is kept (not only
charged ones) and turned into a PF candidate:

* charged (|q| > 0): |η| < 2.5 and pT > ``CHARGED_PT_MIN``; truth four-momentum (tracks are precise);
  vertex association from truth: ``IsPU`` = 0 for particles of the hard scatter (the leading vertex),
  1 for pileup, as Delphes' ``IsPU`` flag in HEPT's files.
* neutral: |η| < 4; energy smeared with a log-normal of the Delphes CMS card's barrel resolution
  (ECAL for photons, HCAL for neutral hadrons), kept if the smeared energy passes the calorimeter
  threshold (``PHOTON_E_MIN`` / ``NEUTRAL_HADRON_E_MIN``); the candidate is massless along the true
  direction (a calorimeter deposit: PT = E / cosh η, Rapidity = Eta). Truth PID and ``IsPU`` kept.
* neutrinos are dropped. No tracking inefficiency, no fake tracks, no tower merging.
"""

from __future__ import annotations

import numpy as np

from partx.datagen.trackml.events import SIGMA_Z, EventSource, _seed, final_state

ETA_MAX_CHARGED = 2.5
ETA_MAX_NEUTRAL = 4.0
CHARGED_PT_MIN = 0.1  # GeV: the lowest pT of the Delphes CMS card's charged-hadron tracking efficiency
PHOTON_E_MIN = 0.5  # GeV: Delphes CMS ECal EnergyMin
NEUTRAL_HADRON_E_MIN = 1.0  # GeV: Delphes CMS HCal EnergyMin
NEUTRINO_IDS = (12, 14, 16)
#: PF branches written per candidate (Delphes ParticleFlowCandidate member names) and their ROOT types
PF_DTYPES: dict[str, str] = {"PT": "float32", "Eta": "float32", "Phi": "float32", "E": "float32",
                             "Px": "float32", "Py": "float32", "Pz": "float32", "Rapidity": "float32",
                             "Charge": "int32", "PID": "int32", "IsPU": "int32", "Z": "float32"}


def ecal_sigma(e: np.ndarray) -> np.ndarray:
    """Photon energy resolution (GeV): the Delphes CMS card's barrel ECal formula."""
    return np.sqrt(e ** 2 * 0.007 ** 2 + e * 0.07 ** 2 + 0.35 ** 2)


def hcal_sigma(e: np.ndarray) -> np.ndarray:
    """Neutral-hadron energy resolution (GeV): the Delphes CMS card's HCal formula for |η| < 3."""
    return np.sqrt(e ** 2 * 0.050 ** 2 + e * 1.50 ** 2)


def log_normal(mean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Log-normal draws with the given mean and standard deviation (Delphes' ``LogNormal``: energies stay > 0)."""
    mean = np.maximum(mean, 1e-9)
    s2 = np.log1p((sigma / mean) ** 2)
    return np.exp(rng.normal(np.log(mean) - 0.5 * s2, np.sqrt(s2)))


def pf_candidates(f: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Particle-flow candidates (``PF_DTYPES`` arrays) of final-state particles ``f``.

    Args:
        f: flat arrays (n,) ``px, py, pz, e, id, q, coll, vz`` (``coll`` 0 = hard scatter; ``vz`` mm
           including the collision's vertex).
        rng: smearing random numbers.
    """
    pt = np.hypot(f["px"], f["py"])
    eta = np.arcsinh(np.divide(f["pz"], pt, out=np.zeros_like(pt), where=pt > 0))
    phi = np.arctan2(f["py"], f["px"])
    charged = f["q"] != 0
    keep_c = charged & (np.abs(eta) < ETA_MAX_CHARGED) & (pt > CHARGED_PT_MIN)
    neutral = ~charged & (np.abs(eta) < ETA_MAX_NEUTRAL) & (pt > 0)
    photon = f["id"] == 22
    e_true = f["e"]
    e_s = np.zeros_like(e_true)
    sig = np.where(photon, ecal_sigma(e_true), hcal_sigma(e_true))
    e_s[neutral] = log_normal(e_true[neutral], sig[neutral], rng)
    keep_n = neutral & (e_s > np.where(photon, PHOTON_E_MIN, NEUTRAL_HADRON_E_MIN))
    c, n = np.flatnonzero(keep_c), np.flatnonzero(keep_n)
    # charged: truth four-momentum; neutral: massless deposit along the true direction
    e_c = e_true[c]
    pz_c = f["pz"][c]
    pt_n = e_s[n] / np.cosh(eta[n])
    out = {
        "PT": np.concatenate([pt[c], pt_n]),
        "Eta": np.concatenate([eta[c], eta[n]]),
        "Phi": np.concatenate([phi[c], phi[n]]),
        "E": np.concatenate([e_c, e_s[n]]),
        "Px": np.concatenate([f["px"][c], pt_n * np.cos(phi[n])]),
        "Py": np.concatenate([f["py"][c], pt_n * np.sin(phi[n])]),
        "Pz": np.concatenate([pz_c, pt_n * np.sinh(eta[n])]),
        "Rapidity": np.concatenate([0.5 * np.log((e_c + pz_c) / np.maximum(e_c - pz_c, 1e-12)), eta[n]]),
        "Charge": np.concatenate([np.sign(f["q"][c]), np.zeros(len(n))]),
        "PID": np.concatenate([f["id"][c], f["id"][n]]),
        "IsPU": np.concatenate([f["coll"][c] != 0, f["coll"][n] != 0]),
        "Z": np.concatenate([f["vz"][c], f["vz"][n]]),
    }
    return {k: np.asarray(v).astype(PF_DTYPES[k]) for k, v in out.items()}


class PileupSource(EventSource):
    """tt̄ + Poisson(``mu``) minimum bias per event id, all stable particles (the TrackML source keeps charged ones).

    Args:
        seed: run seed; event ``k`` depends on (seed, k) only.
        mu: mean number of minimum-bias collisions (0: hard scatter only).
    """

    def __init__(self, seed: int, mu: float):
        super().__init__(seed, mu, pt_min=0.0, hard_scatter=True)

    def _all(self, pythia, n: int) -> dict[str, np.ndarray]:
        f = final_state(pythia, n)
        f = {k: v[~np.isin(np.abs(f["id"]), NEUTRINO_IDS)] for k, v in f.items()}
        f["q"] = self._charges(f["id"], pythia)
        return f

    def truth(self, event_id: int) -> tuple[dict[str, np.ndarray], int]:
        """(final-state particles of all collisions of the event, number of pileup collisions)."""
        rng = np.random.default_rng([self.seed, event_id, 1])
        self.hard.rndm.init(_seed(self.seed, event_id, 0))
        parts = [self._all(self.hard, 1)]
        n_pu = int(rng.poisson(self.pileup)) if self.minbias is not None else 0
        if n_pu:
            self.minbias.rndm.init(_seed(self.seed, event_id, 1))
            mb = self._all(self.minbias, n_pu)
            mb["coll"] = mb["coll"] + 1
            parts.append(mb)
        f = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        vz = rng.normal(0.0, SIGMA_Z, n_pu + 1)  # luminous region: collision vertices along the beam
        f["vz"] = f["vz"] + vz[f["coll"]]
        return f, n_pu

    def event(self, event_id: int) -> dict[str, np.ndarray]:
        """PF candidates (``PF_DTYPES``) of event ``event_id``, hard-scatter candidates first."""
        f, _ = self.truth(event_id)
        return pf_candidates(f, np.random.default_rng([self.seed, event_id, 2]))
