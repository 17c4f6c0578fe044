"""A tiny JetClass-format dataset written without Pythia: random but self-consistent kinematics.

Used by the pipeline tests (weaver training, prediction, ONNX) so they do not depend on the
generator. Branch names and dtypes come from partx.datagen.schema; the tree is a classic TTree.
Classes differ a little (multiplicity and 2-prong structure scale with the class index) so a few
training steps have something to learn.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from partx.datagen import schema


def _jets(rng: np.random.Generator, n_jets: int, class_index: int) -> dict:
    n_part = rng.integers(10 + 4 * class_index, 30 + 6 * class_index, size=n_jets)
    jet_eta = rng.uniform(-1.9, 1.9, n_jets)
    jet_phi = rng.uniform(-np.pi, np.pi, n_jets)
    cols: dict[str, list] = {k: [] for k in schema.branch_types()}
    for i, n in enumerate(n_part):
        pt = np.sort(rng.exponential(20.0, n) + 0.5)[::-1]
        spread = 0.05 + 0.02 * class_index
        deta = rng.normal(0, spread, n)
        dphi = rng.normal(0, spread, n)
        eta, phi = jet_eta[i] + deta, jet_phi[i] + dphi
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        energy = np.sqrt(px**2 + py**2 + pz**2 + 0.14**2)
        charge = rng.choice([-1, 0, 1], n)
        pid = rng.integers(0, 5, n)
        jpx, jpy, jpz, je = px.sum(), py.sum(), pz.sum(), energy.sum()
        row = dict(
            part_px=px, part_py=py, part_pz=pz, part_energy=energy,
            part_deta=deta * np.sign(jet_eta[i]), part_dphi=dphi,
            part_d0val=rng.normal(0, 0.02, n) * (charge != 0), part_d0err=np.full(n, 0.01) * (charge != 0),
            part_dzval=rng.normal(0, 0.02, n) * (charge != 0), part_dzerr=np.full(n, 0.01) * (charge != 0),
            part_charge=charge.astype(float),
            part_isChargedHadron=(pid == 0) & (charge != 0), part_isNeutralHadron=(pid == 1) & (charge == 0),
            part_isPhoton=(pid == 2) & (charge == 0), part_isElectron=(pid == 3) & (charge != 0),
            part_isMuon=(pid == 4) & (charge != 0),
            jet_pt=np.hypot(jpx, jpy), jet_eta=jet_eta[i], jet_phi=jet_phi[i], jet_energy=je,
            jet_nparticles=n, jet_sdmass=np.sqrt(max(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0)),
            jet_tau1=0.3, jet_tau2=0.2, jet_tau3=0.1, jet_tau4=0.05,
            aux_genpart_eta=[jet_eta[i]], aux_genpart_phi=[jet_phi[i]], aux_genpart_pid=[25.0],
            aux_genpart_pt=[np.hypot(jpx, jpy)], aux_truth_match=[True],
        )
        for label in schema.LABELS:
            row[label] = label == schema.CLASSES[class_index].label
        for k, v in row.items():
            cols[k].append(v)
    return cols


def write_file(path: Path, n_jets: int, class_index: int, seed: int, drop: tuple[str, ...] = ()) -> Path:
    rng = np.random.default_rng(seed)
    cols = _jets(rng, n_jets, class_index)
    types = schema.branch_types()
    arrays = {}
    for name, typ in types.items():
        if name in drop:
            continue
        dtype = typ.replace("var * ", "")
        if typ.startswith("var"):
            arrays[name] = ak.values_astype(ak.Array([np.asarray(v) for v in cols[name]]), dtype)
        else:
            arrays[name] = np.asarray(cols[name]).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as f:
        f.mktree(schema.TREE_NAME, {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in arrays.items()})
        f[schema.TREE_NAME].extend(arrays)
    return path


def write_dataset(root: Path, jets_per_file: int = 24, seed: int = 0, drop: tuple[str, ...] = (), files_per_class: int = 1) -> Path:
    """root/Pythia/{train_100M,val_5M,test_20M}/<Stem>_NNN.root for all ten classes."""
    for s, split in enumerate(schema.SPLITS):
        for c, sample in enumerate(schema.CLASSES):
            for i in range(files_per_class):
                path = root / "Pythia" / split / f"{sample.stem}_{i:03d}.root"
                write_file(path, jets_per_file, c, seed * 100000 + s * 1000 + c * 10 + i, drop)
    return root
