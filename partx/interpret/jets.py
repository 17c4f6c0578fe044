"""Jets for attention studies: model inputs through weaver's pipeline, raw particles beside them, subjets.

``load_jets`` reads JetClass-format files (real or ``partx.datagen`` output) with a weaver data config the
way weaver's test loader does (``weaver.utils.dataset``: read -> selection -> new variables ->
``_finalize_inputs``: standardise, pad, stack), and from the same table, so jet for jet aligned, the raw
particle kinematics the plots need (deta, dphi, pT, particle-type flags) truncated to the model's input
length (the first N particles, as weaver keeps them: pT order in JetClass).
``exclusive_kt_subjets`` clusters a jet's particles into n exclusive-kT subjets with fastjet.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field

import numpy as np

from partx.cli import UserError
from partx.fastjet_banner import banner_silenced

#: raw JetClass branches read beside the data config's (partx.datagen.schema names)
RAW_BRANCHES = ("part_deta", "part_dphi", "part_px", "part_py", "part_pz", "part_energy", "part_isChargedHadron",
                "part_isNeutralHadron", "part_isPhoton", "part_isElectron", "part_isMuon")


class JetDataError(UserError):
    """No files, an unreadable file, a branch missing, an unknown class: one line, exit 2."""


@dataclass
class Jets:
    """Jets read for an attention study.

    inputs: name -> (J, C, N) float32 arrays in the data config's input order (what weaver feeds the model).
    labels: (J,) class index into ``class_names``.
    particles: per jet, a dict of (n,) arrays over its n real particles (n <= N): deta, dphi, pt, px, py, pz,
        energy, type (index into ``partx.interpret.stats.PARTICLE_TYPES``, -1 unknown).
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    particles: list[dict[str, np.ndarray]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def short_class(name: str) -> str:
    """label_Hbb -> Hbb."""
    return name.removeprefix("label_")


def resolve_classes(requested: list[str] | None, class_names: list[str]) -> list[int]:
    """Class indices for names given as "Hbb" or "label_Hbb" (all classes if None); JetDataError if unknown."""
    if not requested:
        return list(range(len(class_names)))
    short = [short_class(c) for c in class_names]
    out = []
    for name in requested:
        key = short_class(name)
        if key not in short:
            raise JetDataError(f"unknown class {name!r}; the data config has: {', '.join(short)}")
        out.append(short.index(key))
    return out


def _types(table, n: int) -> np.ndarray:
    from partx.interpret.stats import particle_types

    flags = np.stack([np.asarray(table[b][:n], dtype=bool) for b in RAW_BRANCHES[6:]], axis=1)
    return particle_types(flags)


def load_jets(data_config, files_pattern: str | list[str], jets_per_class: int, classes: list[int] | None = None) -> Jets:
    """Up to ``jets_per_class`` jets of each class in ``classes`` (default all), files in sorted order.

    Args:
        data_config: a weaver ``DataConfig`` (its test-time selection, new variables and preprocessing are used).
        files_pattern: a glob (or list of globs) of ROOT files.
    """
    import awkward as ak
    import uproot
    from weaver.utils.data.fileio import _read_root
    from weaver.utils.data.preprocess import _apply_selection, _build_new_variables
    from weaver.utils.dataset import _finalize_inputs

    patterns = [files_pattern] if isinstance(files_pattern, str) else list(files_pattern)
    files = sorted({f for p in patterns for f in glob.glob(p)})
    if not files:
        raise JetDataError(f"--data {' '.join(patterns)!r} matches no file")
    class_names = list(data_config.label_value) if isinstance(data_config.label_value, (list, tuple)) else []
    if data_config.label_type != "simple" or not class_names:
        raise JetDataError("the data config must have simple (class) labels")
    wanted = list(range(len(class_names))) if classes is None else list(classes)
    need = {c: jets_per_class for c in wanted}
    length = int(next(iter(data_config.input_shapes.values()))[-1])
    branches = set(data_config.test_load_branches) | set(RAW_BRANCHES)
    inputs: dict[str, list] = {k: [] for k in data_config.input_names}
    labels, particles, used = [], [], []
    for path in files:
        if not any(need.values()):
            break
        try:
            with uproot.open(path) as f:
                tree = f[data_config.treename] if data_config.treename else next(
                    f[k] for k, c in f.classnames().items() if c == "TTree")
                missing = sorted(b for b in RAW_BRANCHES if b not in tree.keys())
                n_entries = tree.num_entries
        except Exception as err:  # noqa: BLE001 - uproot raises many types for an unusable file
            raise JetDataError(f"cannot read {path}: {type(err).__name__}: {' '.join(str(err).split())[:160]}") from None
        if missing:
            raise JetDataError(f"{path} is not a JetClass-format file: branches {', '.join(missing)} missing")
        if n_entries == 0:
            continue
        frac = min(1.0, sum(need.values()) * 1.05 / n_entries + 1e-9)  # mixed files: read a little more
        try:
            table = _read_root(path, sorted(branches), load_range=(0.0, frac), treename=data_config.treename,
                               branch_magic=data_config.branch_magic)
        except Exception as err:  # noqa: BLE001
            raise JetDataError(f"cannot read {path} with the data config: {type(err).__name__}: "
                               f"{' '.join(str(err).split())[:160]}") from None
        table["aux_training_"] = False
        table = _apply_selection(table, data_config.test_time_selection, funcs=data_config.var_funcs)
        if len(table) == 0:
            continue
        table = _build_new_variables(table, data_config.test_var_funcs)
        label = ak.to_numpy(table[data_config.label_names[0]]).astype(int)
        keep = []
        for i, c in enumerate(label):
            if need.get(c, 0) > 0:
                need[c] -= 1
                keep.append(i)
        if not keep:
            continue
        table = table[np.asarray(keep)]
        for j in range(len(table)):
            row = table[j]
            n = min(len(row["part_px"]), length)
            px, py = np.asarray(row["part_px"][:n], float), np.asarray(row["part_py"][:n], float)
            particles.append(dict(
                deta=np.asarray(row["part_deta"][:n], float), dphi=np.asarray(row["part_dphi"][:n], float),
                pt=np.hypot(px, py), px=px, py=py, pz=np.asarray(row["part_pz"][:n], float),
                energy=np.asarray(row["part_energy"][:n], float), type=_types(row, n)))
        out = _finalize_inputs(table, data_config)
        for k in data_config.input_names:
            inputs[k].append(np.asarray(out["_" + k], dtype=np.float32))
        labels.append(label[np.asarray(keep)])
        used.append(path)
    if not labels:
        names = ", ".join(short_class(class_names[c]) for c in wanted)
        raise JetDataError(f"no jets of the requested classes ({names}) in {len(files)} file(s) matching the --data pattern")
    return Jets({k: np.concatenate(v) for k, v in inputs.items()}, np.concatenate(labels), class_names, particles, used)


def exclusive_kt_subjets(px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray, n_subjets: int) -> np.ndarray:
    """(n,) subjet index per particle: exclusive kT clustering (R = 0.8) to min(n_subjets, n) subjets, numbered
    in decreasing subjet pT."""
    try:
        import fastjet
    except ImportError:
        raise UserError("subjets need fastjet: pip install 'partx[gen]' (or fastjet>=3.4)") from None
    n = len(px)
    if n == 0:
        return np.zeros(0, dtype=int)
    pjs = []
    for i in range(n):
        pj = fastjet.PseudoJet(float(px[i]), float(py[i]), float(pz[i]), float(energy[i]))
        pj.set_user_index(i)
        pjs.append(pj)
    with banner_silenced():
        cs = fastjet.ClusterSequence(pjs, fastjet.JetDefinition(fastjet.kt_algorithm, 0.8))
        subjets = sorted(cs.exclusive_jets(min(n_subjets, n)), key=lambda j: -j.pt())
    labels = np.zeros(n, dtype=int)
    for s, jet in enumerate(subjets):
        for c in jet.constituents():
            labels[c.user_index()] = s
    return labels
