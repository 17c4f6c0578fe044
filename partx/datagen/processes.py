"""Pythia 8 process configuration for the ten JetClass classes.

Each class is one or more Pythia *variants* (a list of ``readString`` settings) plus the truth
definition the matcher needs: which resonance (absolute PDG id) a signal jet is matched to, and
which W decay (hadronic / leptonic) the jets of that class must come from. QCD has no resonance.

Choices (documented in docs/datagen.md):
  * 13 TeV pp, ``PhaseSpace:pTHatMin/Max = 450/1100`` so that the boosted object lands in the
    500-1000 GeV jet window; the 2->2 pT-hat is the resonance pT for every process used here.
  * Higgs classes: ``HiggsSM:ffbar2HZ`` with Z -> nu nu (invisible recoil) and the Higgs decay forced.
    H -> WW* -> l nu q q' uses two variants: W+ hadronic / W- leptonic and the charge conjugate;
    each output file takes half its jets from each, so nothing is filtered away.
  * Top classes: ``Top:gg2ttbar`` + ``Top:qqbar2ttbar``; for t -> bqq' both W decay hadronically,
    for t -> b l nu both W decay leptonically (e, mu, tau): both tops are then usable, which doubles
    the yield per event (jets of one event are written next to each other; harmless for training).
  * W / Z: vector boson + parton (``WeakBosonAndParton``), Z pure Z (``WeakZ0:gmZmode = 2``).
  * QCD: Z(-> nu nu) + parton, the jet recoiling against the invisible Z.
  * Long-lived hadrons (c*tau > 10 mm) are stable: K0S, Lambda, charged pions/kaons reach the
    detector; B and D hadrons decay (displaced vertices for the impact-parameter branches).
  * MPI / underlying event on; ``fast=True`` switches MPI off (about 2x faster, no UE).
"""

from __future__ import annotations

from dataclasses import dataclass

QUARKS = "1 2 3 4 5"
LEPTONS = "11 13 15"
NEUTRINOS = "12 14 16"

#: Settings every partx Pythia instance shares (JetClass and TrackML generators): no printout, and
#: particles with c*tau0 > 10 mm stable, as in the generator-level definition used by Delphes samples.
QUIET_STABLE = (
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Print:quiet = on",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
)

COMMON = (
    "Beams:eCM = 13000.",
    "PhaseSpace:pTHatMin = 450.",
    "PhaseSpace:pTHatMax = 1100.",
    *QUIET_STABLE,
)

_HZ = ("HiggsSM:ffbar2HZ = on", "23:onMode = off", f"23:onIfAny = {NEUTRINOS}", "25:onMode = off")
_TT = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off")
_ZNUNU_JET = (
    "WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2",
    "23:onMode = off", f"23:onIfAny = {NEUTRINOS}",
)


@dataclass(frozen=True)
class Process:
    """How to generate and match one JetClass class."""

    stem: str
    variants: tuple[tuple[str, ...], ...]
    #: absolute PDG id of the resonance a jet is matched to (0: QCD, no matching)
    resonance: int
    #: required decay of the W bosons inside the matched object: "had", "lep", "one_lep" or "" (n/a)
    w_decay: str = ""
    notes: str = ""
    #: beam / phase-space settings (the benchmark generators of partx.datagen.benchmarks use their own)
    common: tuple[str, ...] = COMMON


PROCESSES: dict[str, Process] = {
    "ZJetsToNuNu": Process("ZJetsToNuNu", (_ZNUNU_JET,), 0, notes="Z(->nunu) + q/g"),
    "HToBB": Process("HToBB", (_HZ + ("25:onIfMatch = 5 -5",),), 25),
    "HToCC": Process("HToCC", (_HZ + ("25:onIfMatch = 4 -4",),), 25),
    "HToGG": Process("HToGG", (_HZ + ("25:onIfMatch = 21 21",),), 25),
    "HToWW4Q": Process(
        "HToWW4Q", (_HZ + ("25:onIfMatch = 24 -24", "24:onMode = off", f"24:onIfAny = {QUARKS}"),), 25, "had"
    ),
    "HToWW2Q1L": Process(
        "HToWW2Q1L",
        (
            _HZ + ("25:onIfMatch = 24 -24", "24:onMode = off",
                   f"24:onPosIfAny = {QUARKS}", f"24:onNegIfAny = {LEPTONS}"),
            _HZ + ("25:onIfMatch = 24 -24", "24:onMode = off",
                   f"24:onPosIfAny = {LEPTONS}", f"24:onNegIfAny = {QUARKS}"),
        ),
        25,
        "one_lep",
    ),
    "ZToQQ": Process(
        "ZToQQ",
        (("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2",
          "23:onMode = off", f"23:onIfAny = {QUARKS}"),),
        23,
    ),
    "WToQQ": Process(
        "WToQQ",
        (("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on",
          "24:onMode = off", f"24:onIfAny = {QUARKS}"),),
        24,
    ),
    "TTBar": Process("TTBar", (_TT + (f"24:onIfAny = {QUARKS}",),), 6, "had"),
    "TTBarLep": Process("TTBarLep", (_TT + (f"24:onIfAny = {LEPTONS}",),), 6, "lep"),
}


def _benchmark_common(ecm: float, pthat: tuple[float, float]) -> tuple[str, ...]:
    return (f"Beams:eCM = {ecm:.1f}", f"PhaseSpace:pTHatMin = {pthat[0]:.1f}", f"PhaseSpace:pTHatMax = {pthat[1]:.1f}",
            *QUIET_STABLE)


#: The public jet-tagging benchmarks (partx.datagen.benchmarks), 14 TeV as both originals:
#:   * quark-gluon (EnergyFlow's Pythia set, arXiv:1810.05165): Z(->nu nu) + g (qqbar -> Z g) and
#:     Z(->nu nu) + light quark (q g -> Z q; the generator keeps u, d, s jets); jets 500-550 GeV, so
#:     pT-hat 400-700 GeV;
#:   * top tagging landscape (arXiv:1902.09914): all-hadronic ttbar against QCD dijets (HardQCD:all),
#:     no MPI (as the original), jets 550-650 GeV, so pT-hat 450-750 GeV.
_QG_COMMON = _benchmark_common(14000.0, (400.0, 700.0))
_TL_COMMON = _benchmark_common(14000.0, (450.0, 750.0)) + ("PartonLevel:MPI = off",)
_ZNUNU = ("WeakZ0:gmZmode = 2", "23:onMode = off", f"23:onIfAny = {NEUTRINOS}")
BENCHMARK_PROCESSES: dict[str, Process] = {
    "QG_Quark": Process("QG_Quark", (("WeakBosonAndParton:qg2gmZq = on", *_ZNUNU),), 0, common=_QG_COMMON,
                        notes="Z(->nunu) + q"),
    "QG_Gluon": Process("QG_Gluon", (("WeakBosonAndParton:qqbar2gmZg = on", *_ZNUNU),), 0, common=_QG_COMMON,
                        notes="Z(->nunu) + g"),
    "TL_Top": Process("TL_Top", (_TT + (f"24:onIfAny = {QUARKS}",),), 6, "had", common=_TL_COMMON),
    "TL_QCD": Process("TL_QCD", (("HardQCD:all = on",),), 0, common=_TL_COMMON),
}


def process(stem: str) -> Process:
    """A JetClass class or a benchmark process by name."""
    return PROCESSES[stem] if stem in PROCESSES else BENCHMARK_PROCESSES[stem]


def pythia_settings(stem: str, variant: int, seed: int, *, fast: bool = False) -> list[str]:
    """Full list of ``readString`` settings for one Pythia instance."""
    proc = process(stem)
    out = list(proc.common) + list(proc.variants[variant])
    out += ["Random:setSeed = on", f"Random:seed = {int(seed)}"]
    if fast:
        out.append("PartonLevel:MPI = off")
    return out
