"""On-disk schema of the JetClass ROOT files: the single source of truth for branch names and dtypes.

Real JetClass files (Zenodo record 6619768) hold one classic TTree named ``tree`` per file, one
jet per entry. Particle branches are jagged (one value per constituent, constituents pT-ordered),
jet / label branches are flat. The generator, the validator and the test fixtures all read this
module, so a branch renamed here is renamed everywhere.

Conventions the files follow (checked by ``partx.datagen.validate``):
  * ``part_deta = (eta_part - eta_jet) * sign(eta_jet)``, ``part_dphi = dphi(phi_part, phi_jet)``;
  * exactly one ``label_*`` branch is true per jet;
  * file names are ``<Stem>_NNN.root`` under ``Pythia/{train_100M,val_5M,test_20M}/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TREE_NAME = "tree"

#: Split directory names of the real dataset, in (train, val, test) order.
SPLITS = ("train_100M", "val_5M", "test_20M")


@dataclass(frozen=True)
class JetClassSample:
    """One of the ten JetClass classes: file stem and its label branch."""

    stem: str
    label: str
    description: str


#: The ten classes, in the label order of the official JetClass data configs.
CLASSES: tuple[JetClassSample, ...] = (
    JetClassSample("ZJetsToNuNu", "label_QCD", "QCD: Z(->nunu) + jets"),
    JetClassSample("HToBB", "label_Hbb", "H -> b bbar"),
    JetClassSample("HToCC", "label_Hcc", "H -> c cbar"),
    JetClassSample("HToGG", "label_Hgg", "H -> g g"),
    JetClassSample("HToWW4Q", "label_H4q", "H -> W W* -> 4 quarks"),
    JetClassSample("HToWW2Q1L", "label_Hqql", "H -> W W* -> l nu q q'"),
    JetClassSample("ZToQQ", "label_Zqq", "Z -> q qbar"),
    JetClassSample("WToQQ", "label_Wqq", "W -> q q'"),
    JetClassSample("TTBar", "label_Tbqq", "t -> b q q'"),
    JetClassSample("TTBarLep", "label_Tbl", "t -> b l nu"),
)

STEMS = tuple(c.stem for c in CLASSES)
LABELS = tuple(c.label for c in CLASSES)

# Jagged per-particle branches. The float ones are float32 in the real files.
PARTICLE_FLOAT = (
    "part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi",
    "part_d0val", "part_d0err", "part_dzval", "part_dzerr", "part_charge",
)
PARTICLE_INT = (
    "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton", "part_isElectron", "part_isMuon",
)
JET_FLOAT = (
    "jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_nparticles", "jet_sdmass",
    "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4",
)
AUX_JAGGED_FLOAT = ("aux_genpart_eta", "aux_genpart_phi", "aux_genpart_pid", "aux_genpart_pt")
AUX_JAGGED_BOOL = ("aux_truth_match",)

# Label dtypes differ between labels in the real files (a historical accident we reproduce).
LABEL_DTYPES: dict[str, np.dtype] = {
    "label_QCD": np.dtype(np.float32),
    "label_Hbb": np.dtype(np.bool_),
    "label_Hcc": np.dtype(np.bool_),
    "label_Hgg": np.dtype(np.bool_),
    "label_H4q": np.dtype(np.bool_),
    "label_Hqql": np.dtype(np.bool_),
    "label_Zqq": np.dtype(np.int32),
    "label_Wqq": np.dtype(np.int32),
    "label_Tbqq": np.dtype(np.int32),
    "label_Tbl": np.dtype(np.int32),
}


def branch_types() -> dict[str, str]:
    """Branch name -> uproot type string (``"var * float32"`` for jagged) for ``mktree``."""
    types: dict[str, str] = {}
    for name in PARTICLE_FLOAT:
        types[name] = "var * float32"
    for name in PARTICLE_INT:
        types[name] = "var * int32"
    for name in LABELS:
        types[name] = LABEL_DTYPES[name].name
    for name in JET_FLOAT:
        types[name] = "float32"
    for name in AUX_JAGGED_FLOAT:
        types[name] = "var * float32"
    for name in AUX_JAGGED_BOOL:
        types[name] = "var * bool"
    return types


def stem_of(label: str) -> str:
    """``label_Hbb`` -> ``HToBB``."""
    for c in CLASSES:
        if c.label == label:
            return c.stem
    raise KeyError(f"unknown JetClass label {label!r}; known: {', '.join(LABELS)}")


def label_of(stem: str) -> str:
    """``HToBB`` -> ``label_Hbb``."""
    for c in CLASSES:
        if c.stem == stem:
            return c.label
    raise KeyError(f"unknown JetClass sample {stem!r}; known: {', '.join(STEMS)}")
