"""Validate a directory of JetClass-format ROOT files (ours or the real ones) against ``schema``.

``validate_file`` / ``validate_dir`` raise :class:`SchemaError` with ONE message naming the file,
the branch and the problem: missing branch, wrong dtype, wrong tree name, RNTuple instead of a
classic TTree, empty file, a branch that cannot be read (truncated or corrupt file), NaN/inf, zero
or several true labels for a jet. On success
``validate_dir`` returns a per-class :class:`Summary`; ``plot_summary`` draws the jet soft-drop mass
and the constituent multiplicity per class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from partx.datagen import schema


class SchemaError(ValueError):
    """A file does not follow the JetClass schema (the message names file, branch and problem)."""


@dataclass
class ClassStats:
    files: int = 0
    jets: int = 0
    nparticles: list = field(default_factory=list)
    sdmass: list = field(default_factory=list)
    jet_pt: list = field(default_factory=list)

    @property
    def mean_constituents(self) -> float:
        return float(np.mean(np.concatenate(self.nparticles))) if self.jets else float("nan")

    @property
    def median_sdmass(self) -> float:
        return float(np.median(np.concatenate(self.sdmass))) if self.jets else float("nan")

    @property
    def median_pt(self) -> float:
        return float(np.median(np.concatenate(self.jet_pt))) if self.jets else float("nan")


@dataclass
class Summary:
    files: list[Path]
    classes: dict[str, ClassStats]

    def table(self) -> str:
        head = f"{'class':<14}{'label':<12}{'files':>6}{'jets':>9}{'<n_const>':>11}{'med m_SD':>10}{'med pT':>9}"
        rows = [head, "-" * len(head)]
        for label, s in self.classes.items():
            rows.append(f"{schema.stem_of(label):<14}{label:<12}{s.files:>6}{s.jets:>9}"
                        f"{s.mean_constituents:>11.1f}{s.median_sdmass:>10.1f}{s.median_pt:>9.1f}")
        rows.append(f"total: {sum(s.jets for s in self.classes.values())} jets in {len(self.files)} files")
        return "\n".join(rows)


def _dtype_of(branch) -> tuple[str, bool]:
    """(numpy dtype name of the innermost values, jagged?) of a TTree branch."""
    interp = branch.interpretation
    import uproot

    if isinstance(interp, uproot.interpretation.jagged.AsJagged):
        return np.dtype(interp.content.to_dtype).name, True
    if isinstance(interp, uproot.interpretation.numerical.AsDtype):
        return np.dtype(interp.to_dtype).name, False
    if isinstance(interp, uproot.interpretation.objects.AsObjects):  # e.g. std::vector<float>
        arr = branch.array(entry_stop=1)
        return str(ak.type(arr).content).split("*")[-1].strip(), True
    raise SchemaError(f"{branch.file.file_path}: branch {branch.name!r}: unsupported interpretation {interp}")


def _read_branch(path: Path, branch) -> ak.Array:
    """Every basket of ``branch``: a truncated or corrupt file fails here, naming the branch.

    uproot opens a truncated file from its header and directory alone; only reading the baskets finds
    the missing bytes. (A truncation after the last basket, which only the TFile end marker reveals, is
    for partx.preflight's integrity check; see tests/test_bad_inputs_tools.py.)
    """
    try:
        return branch.array(library="ak")
    except Exception as exc:  # noqa: BLE001 - uproot raises OSError, DeserializationError, ValueError, ...
        raise SchemaError(f"{path}: branch {branch.name!r}: cannot be read, the file is truncated or corrupt "
                          f"({exc.__class__.__name__}: {' '.join(str(exc).split())})") from None


def _expected(t: str) -> tuple[str, bool]:
    return (t.split()[-1], True) if t.startswith("var * ") else (t, False)


def validate_file(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """Check one file; return (its label, per-jet arrays used by the summary)."""
    import uproot

    path = Path(path)
    if path.stat().st_size == 0:
        raise SchemaError(f"{path}: empty file (0 bytes)")
    from partx.preflight import PreflightError, check_root_integrity

    try:  # a file cut after its last basket reads completely: only the TFile end marker shows it
        check_root_integrity(str(path))
    except PreflightError as exc:
        raise SchemaError(str(exc)) from None
    try:
        f = uproot.open(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a schema failure
        raise SchemaError(f"{path}: not a readable ROOT file ({exc.__class__.__name__}: {exc})") from None
    with f:
        classes = f.classnames()
        name = schema.TREE_NAME
        if f"{name};1" not in classes and name not in {k.split(";")[0] for k in classes}:
            found = ", ".join(f"{k.split(';')[0]} ({v})" for k, v in classes.items()) or "nothing"
            raise SchemaError(f"{path}: no object named {name!r} (found: {found})")
        cls = {k.split(";")[0]: v for k, v in classes.items()}[name]
        if "RNTuple" in cls:
            raise SchemaError(f"{path}: {name!r} is an RNTuple; JetClass files need a classic TTree "
                              "(write with uproot mktree + extend)")
        if cls != "TTree":
            raise SchemaError(f"{path}: {name!r} is a {cls}, not a TTree")
        tree = f[name]
        if tree.num_entries == 0:
            raise SchemaError(f"{path}: tree {name!r} is empty (0 jets)")
        keys = set(tree.keys())
        for br, t in schema.branch_types().items():
            if br not in keys:
                raise SchemaError(f"{path}: branch {br!r}: missing")
            want, want_jag = _expected(t)
            got, got_jag = _dtype_of(tree[br])
            if got != want or got_jag != want_jag:
                raise SchemaError(f"{path}: branch {br!r}: wrong type {'var * ' if got_jag else ''}{got}, "
                                  f"expected {t}")
        arrays = {br: _read_branch(path, tree[br]) for br in schema.branch_types()}
    for br, t in schema.branch_types().items():
        if t.split()[-1].startswith("float"):
            flat = ak.to_numpy(ak.flatten(arrays[br], axis=None))
            bad = ~np.isfinite(flat)
            if bad.any():
                raise SchemaError(f"{path}: branch {br!r}: {int(bad.sum())} non-finite value(s) (NaN/inf)")
    check_conventions(path, arrays)
    labels = np.stack([ak.to_numpy(arrays[lab]).astype(np.float64) for lab in schema.LABELS], axis=1)
    nlab = (labels != 0).sum(axis=1)
    if (nlab != 1).any():
        j = int(np.flatnonzero(nlab != 1)[0])
        raise SchemaError(f"{path}: label branches: jet {j} has {int(nlab[j])} true labels "
                          f"(expected exactly one of {', '.join(schema.LABELS)})")
    which = np.unique(labels.argmax(axis=1))
    label = schema.LABELS[int(which[0])] if len(which) == 1 else "mixed"
    stats = {k: ak.to_numpy(arrays[k]).astype(np.float64) for k in ("jet_nparticles", "jet_sdmass", "jet_pt")}
    stats["label_index"] = labels.argmax(axis=1)
    return label, stats


#: float32 storage of O(100 GeV) momenta and O(1) angles: differences below these are rounding
PT_ORDER_RTOL = 1e-5
DETA_ATOL = 2e-3


def check_conventions(path: Path, arrays: ak.Array) -> None:
    """The conventions the JetClass schema promises beyond names and types (as in the real JetClass files, docs/datagen.md):

    * constituents are ordered by decreasing pT = hypot(px, py) in every jet;
    * ``part_deta = (eta - jet_eta) * sign(jet_eta)`` (the sign flip makes the forward direction of
      every jet the same), with eta the constituent's pseudorapidity from (px, py, pz);
    * no jet without constituents (weaver would feed an all-padding jet to the model).

    One SchemaError names the file, the convention and the first jet that breaks it.
    """
    counts = ak.to_numpy(ak.num(arrays["part_px"]))
    if (counts == 0).any():
        raise SchemaError(f"{path}: jet {int(np.flatnonzero(counts == 0)[0])} has no constituents "
                          f"({int((counts == 0).sum())} empty jet(s))")
    pt = np.hypot(arrays["part_px"], arrays["part_py"])
    rising = ak.any(pt[:, 1:] > pt[:, :-1] * (1 + PT_ORDER_RTOL) + 1e-6, axis=1)
    if ak.any(rising):
        j = int(np.flatnonzero(ak.to_numpy(rising))[0])
        raise SchemaError(f"{path}: constituents of jet {j} are not ordered by decreasing pT "
                          f"({int(ak.sum(rising))} jet(s)); JetClass constituents are pT-ordered")
    eta = np.arcsinh(arrays["part_pz"] / np.maximum(pt, 1e-12))
    jet_eta = arrays["jet_eta"]
    sign = np.where(jet_eta >= 0, 1.0, -1.0)
    off = abs(arrays["part_deta"] - (eta - jet_eta) * sign) > DETA_ATOL
    off_jets = ak.to_numpy(ak.any(off, axis=1))
    if off_jets.any():
        j = int(np.flatnonzero(off_jets)[0])
        unsigned = ak.to_numpy(ak.all(abs(arrays["part_deta"][j] - (eta[j] - jet_eta[j])) <= DETA_ATOL))
        hint = " (it matches eta - jet_eta without the sign flip)" if unsigned and jet_eta[j] < 0 else ""
        raise SchemaError(f"{path}: part_deta of jet {j} is not (eta - jet_eta) * sign(jet_eta){hint}; "
                          f"{int(off_jets.sum())} jet(s) break the convention")


def validate_dir(path: str | os.PathLike) -> Summary:
    """Validate every ``*.root`` under ``path`` (recursively; temp files ignored)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.root") if not p.name.startswith("."))
    if not files:
        raise SchemaError(f"{path}: no .root files found")
    classes: dict[str, ClassStats] = {}
    for fp in files:
        _, st = validate_file(fp)
        for li in np.unique(st["label_index"]):
            m = st["label_index"] == li
            s = classes.setdefault(schema.LABELS[int(li)], ClassStats())
            s.files += 1
            s.jets += int(m.sum())
            s.nparticles.append(st["jet_nparticles"][m])
            s.sdmass.append(st["jet_sdmass"][m])
            s.jet_pt.append(st["jet_pt"][m])
    order = {lab: i for i, lab in enumerate(schema.LABELS)}
    return Summary(files, dict(sorted(classes.items(), key=lambda kv: order[kv[0]])))


def plot_summary(summary: Summary, out: str | os.PathLike) -> Path:
    """Soft-drop mass and constituent multiplicity per class (step histograms), written atomically."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    from partx.plotting import hep_style, save_figure

    hep_style()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(16, 7))
    mbins = np.linspace(0, 250, 51)
    nbins = np.linspace(0, 150, 51)
    colors = plt.get_cmap("tab10").colors
    for i, (label, s) in enumerate(summary.classes.items()):
        if not s.jets:
            continue
        stem = schema.stem_of(label)
        style = dict(label=stem, color=colors[schema.LABELS.index(label) % 10], ls="-" if i % 2 == 0 else "--")
        h, _ = np.histogram(np.concatenate(s.sdmass), mbins)
        hep.histplot(h / max(h.sum(), 1), mbins, ax=a1, **style)
        h, _ = np.histogram(np.concatenate(s.nparticles), nbins)
        hep.histplot(h / max(h.sum(), 1), nbins, ax=a2, **style)
    a1.set_xlabel(r"jet soft-drop mass [GeV]")
    a2.set_xlabel("number of constituents")
    for a in (a1, a2):
        a.set_ylabel("fraction of jets")
        a.legend(fontsize=11, ncol=2)
    fig.tight_layout()
    return save_figure(fig, out, dpi=80, quiet=True)
