"""Jet substructure observables: soft-drop mass and N-subjettiness tau_1..tau_4.

The scikit-hep ``fastjet`` wheel (3.5.x) ships no Python binding of fjcontrib's ``SoftDrop`` /
``Nsubjettiness`` classes, but its awkward-array interface runs both in C++ over many "events" at
once. We hand it one "event" per jet (the jet's constituents), recluster each into exactly one jet
with Cambridge/Aachen at a radius large enough to never merge with the beam, and ask for
  * soft drop with beta = 0, z_cut = 0.1, R0 = 0.8 (the Delphes CMS card's FatJetFinder settings:
    BetaSoftDrop 0.0, SymmetryCutSoftDrop 0.1, R0SoftDrop 0.8), and
  * N-subjettiness with the normalised measure, beta = 1, R0 = 0.8 and one-pass kT axes (the
    card's ``Beta 1.0``, ``AxisMode 4``; Delphes' FastJetFinder uses ``NormalizedMeasure``).
No per-jet Python loop.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

_RECLUSTER_R = 10.0  # C/A radius: all constituents of an R = 0.8 jet merge before any beam step


def substructure(px: ak.Array, py: ak.Array, pz: ak.Array, e: ak.Array) -> dict[str, np.ndarray]:
    """Jagged constituents (one list per jet) -> {"sdmass", "tau1".."tau4"} as float64 arrays."""
    import fastjet

    njet = len(px)
    out = {k: np.zeros(njet) for k in ("sdmass", "tau1", "tau2", "tau3", "tau4")}
    if njet == 0:
        return out
    arr = ak.zip({"px": ak.values_astype(px, np.float64), "py": ak.values_astype(py, np.float64),
                  "pz": ak.values_astype(pz, np.float64), "E": ak.values_astype(e, np.float64)})
    jetdef = fastjet.JetDefinition(fastjet.cambridge_algorithm, _RECLUSTER_R)
    cs = fastjet.ClusterSequence(arr, jetdef)
    sd = cs.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=0.8)
    out["sdmass"] = np.nan_to_num(ak.to_numpy(sd.msoftdrop).astype(np.float64), nan=0.0)
    taus = ak.to_numpy(cs.njettiness(measure_definition="NormalizedMeasure", axes_definition="OnePass_KT_Axes",
                                       njets=[1, 2, 3, 4], beta=1.0, R0=0.8))
    for k in range(4):
        out[f"tau{k + 1}"] = np.nan_to_num(taus[:, k].astype(np.float64), nan=0.0)
    return out
