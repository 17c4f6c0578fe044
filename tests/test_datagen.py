"""Tests of the embedded JetClass generator (partx.datagen.jetclass & co.).

The tiny preset is generated ONCE per session (module fixture, ~30 s on 2 cores) and reused.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
uproot = pytest.importorskip("uproot")

from partx.datagen import jetclass, schema  # noqa: E402
from partx.datagen.validate import SchemaError, validate_dir, validate_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("jetclass_tiny")
    jetclass.generate(out, jetclass.PRESETS["tiny"], seed=0, workers=2, progress=False)
    return out


def _read(tiny: Path, stem: str, splits=schema.SPLITS) -> ak.Array:
    files = [p for s in splits for p in sorted((tiny / "Pythia" / s).glob(f"{stem}_*.root"))]
    arrs = [uproot.open(f)["tree"].arrays(list(schema.branch_types())) for f in files]
    return ak.concatenate(arrs)


# ----------------------------------------------------------------------------- format
def test_tiny_layout_and_schema(tiny):
    sizes = jetclass.split_sizes(jetclass.PRESETS["tiny"])
    for split, d in zip(("train", "val", "test"), schema.SPLITS):
        files = sorted((tiny / "Pythia" / d).glob("*.root"))
        assert {f.name.rsplit("_", 1)[0] for f in files} == set(schema.STEMS)
        for f in files:
            with uproot.open(f) as fh:
                tree = fh["tree"]
                assert isinstance(tree, uproot.TTree)  # classic TTree, not RNTuple
                assert tree.num_entries == sizes[split]
                arrays = tree.arrays(list(schema.branch_types()))
                for br, t in schema.branch_types().items():
                    assert str(ak.type(arrays[br]).content) == t, (f, br)
    summary = validate_dir(tiny)
    assert set(summary.classes) == set(schema.LABELS)


def test_labels_kinematics_ordering(tiny):
    for stem in schema.STEMS:
        a = _read(tiny, stem)
        labels = np.stack([ak.to_numpy(a[lab]).astype(float) for lab in schema.LABELS], 1)
        assert ((labels != 0).sum(1) == 1).all()
        assert (labels[:, schema.LABELS.index(schema.label_of(stem))] == 1).all()
        pt = ak.to_numpy(a.jet_pt)
        assert ((pt > 500) & (pt < 1000)).all() and (np.abs(ak.to_numpy(a.jet_eta)) < 2).all()
        ppt = np.hypot(a.part_px, a.part_py)
        assert ak.all(ppt[:, :-1] >= ppt[:, 1:] - 1e-3), stem  # pT-ordered (float32 rounding)
        assert (ak.to_numpy(ak.num(a.part_px)) == ak.to_numpy(a.jet_nparticles)).all()
        # part_deta = (eta - eta_jet) * sign(eta_jet), recomputed from the momenta
        eta = np.arcsinh(a.part_pz / ppt)
        sgn = np.where(ak.to_numpy(a.jet_eta) >= 0, 1.0, -1.0)
        assert ak.max(abs((eta - a.jet_eta) * sgn - a.part_deta)) < 1e-3
        dphi = np.arctan2(a.part_py, a.part_px) - a.jet_phi
        dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
        assert ak.max(abs(dphi - a.part_dphi)) < 1e-3
        assert ak.max(abs(a.part_dphi)) < np.pi
        # the jet four-momentum is the sum of its constituents
        assert np.allclose(ak.to_numpy(ak.sum(a.part_energy, 1)), ak.to_numpy(a.jet_energy), rtol=1e-4)
        # neutral constituents carry no impact parameter
        neutral = a.part_charge == 0
        assert ak.all(a.part_d0val[neutral] == 0) and ak.all(a.part_d0err[neutral] == 0)


# ----------------------------------------------------------------------------- validator
def _arrays_of(path: Path) -> dict:
    with uproot.open(path) as f:
        t = f["tree"]
        return {k: t[k].array() for k in schema.branch_types()}


def _write_raw(path: Path, arrays: dict) -> Path:
    """Write arbitrary branches (jagged grouped like partx.datagen.io) without the schema check."""
    data, groups = {}, {"part": {}, "aux": {}}
    for k, v in arrays.items():
        if isinstance(v, ak.Array) and v.ndim == 2:
            pre = "part" if k.startswith("part_") else "aux"
            groups[pre][k[len(pre) + 1:]] = v
        else:
            data[k] = np.asarray(v)
    for pre, fields in groups.items():
        if fields:
            data[pre] = ak.zip(fields)
    with uproot.recreate(path) as f:
        f.mktree("tree", {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()})
        f["tree"].extend(data)
    return path


@pytest.fixture(scope="module")
def good_file(tiny) -> Path:
    return tiny / "Pythia" / schema.SPLITS[0] / "TTBar_000.root"


def test_validator_missing_branch(good_file, tmp_path):
    a = _arrays_of(good_file)
    del a["jet_sdmass"]
    p = _write_raw(tmp_path / "missing.root", a)
    with pytest.raises(SchemaError, match=r"missing\.root.*'jet_sdmass'.*missing"):
        validate_file(p)


def test_validator_wrong_dtype(good_file, tmp_path):
    a = _arrays_of(good_file)
    a["label_Tbqq"] = ak.to_numpy(a["label_Tbqq"]).astype(np.float64)
    p = _write_raw(tmp_path / "dtype.root", a)
    with pytest.raises(SchemaError, match=r"'label_Tbqq'.*wrong type float64, expected int32"):
        validate_file(p)
    a = _arrays_of(good_file)
    a["part_px"] = ak.values_astype(a["part_px"], np.float64)
    p = _write_raw(tmp_path / "dtype2.root", a)
    with pytest.raises(SchemaError, match=r"'part_px'.*wrong type var \* float64"):
        validate_file(p)


def test_validator_nan_labels_tree_empty(good_file, tmp_path):
    a = _arrays_of(good_file)
    e = ak.to_numpy(a["jet_tau2"]).copy()
    e[3] = np.nan
    a["jet_tau2"] = e
    with pytest.raises(SchemaError, match=r"'jet_tau2'.*NaN"):
        validate_file(_write_raw(tmp_path / "nan.root", a))
    a = _arrays_of(good_file)
    a["label_QCD"] = np.ones(len(a["label_QCD"]), np.float32)
    with pytest.raises(SchemaError, match=r"jet 0 has 2 true labels"):
        validate_file(_write_raw(tmp_path / "twolabels.root", a))
    with uproot.recreate(tmp_path / "name.root") as f:
        f.mktree("Events", {"x": np.float32}).extend({"x": np.zeros(3, np.float32)})
    with pytest.raises(SchemaError, match=r"no object named 'tree'"):
        validate_file(tmp_path / "name.root")
    with uproot.recreate(tmp_path / "rntuple.root") as f:
        f["tree"] = {"x": np.zeros(3, np.float32)}  # uproot 5.7 default: RNTuple
    with pytest.raises(SchemaError, match=r"RNTuple"):
        validate_file(tmp_path / "rntuple.root")
    (tmp_path / "empty.root").write_bytes(b"")
    with pytest.raises(SchemaError, match=r"empty file"):
        validate_file(tmp_path / "empty.root")


def test_cli_validate(tiny, tmp_path, capsys):
    from partx.datagen.__main__ import main

    png = tmp_path / "summary.png"
    assert main(["validate", str(tiny), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "HToWW2Q1L" in out and str(png) in out and png.stat().st_size > 1000
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.root").write_bytes(b"")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "x.root" in err and "Traceback" not in err


def test_validator_conventions(good_file, tmp_path):
    """A file with the right names and types that breaks a JetClass convention is named."""
    a = _arrays_of(good_file)
    a["part_deta"] = a["part_deta"] * np.where(ak.to_numpy(a["jet_eta"]) >= 0, 1.0, -1.0).astype(np.float32)
    if (ak.to_numpy(a["jet_eta"]) < 0).any():  # unsigned deta: wrong for every backward jet
        with pytest.raises(SchemaError, match=r"part_deta of jet \d+ is not \(eta - jet_eta\) \* sign.*without the sign flip"):
            validate_file(_write_raw(tmp_path / "unsigned.root", a))
    a = _arrays_of(good_file)
    for br in ("part_px", "part_py", "part_pz", "part_energy", "part_deta"):
        a[br] = a[br][:, ::-1]  # pT-ascending
    with pytest.raises(SchemaError, match=r"jet 0 are not ordered by decreasing pT"):
        validate_file(_write_raw(tmp_path / "unsorted.root", a))
    a = _arrays_of(good_file)
    not_jet2 = np.arange(len(a["jet_pt"])) != 2
    for br in [k for k in a if k.startswith("part_")]:
        a[br] = a[br][ak.broadcast_arrays(not_jet2, a[br])[0]]  # jet 2 loses its constituents
    with pytest.raises(SchemaError, match=r"jet 2 has no constituents"):
        validate_file(_write_raw(tmp_path / "emptyjet.root", a))


@pytest.mark.parametrize("argv,message", [
    (["jetclass", "--out", "{tmp}/o", "--splits", "test_20M,bogus"], "unknown split 'bogus'"),
    (["jetclass", "--out", "{tmp}/o", "--jets-per-class", "0"], "0 is not a positive integer"),
    (["jetclass", "--out", "{tmp}/o", "--jets-per-class", "-3"], "-3 is not a positive integer"),
    (["jetclass", "--out", "{tmp}/o", "--workers", "0"], "0 is not a positive integer"),
    (["jetclass", "--out", "{tmp}/o", "--classes", "Foo"], "unknown class(es) Foo"),
    (["jetclass", "--out", "{tmp}/afile"], "exists and is not a directory"),
    (["validate", "{tmp}/nothing"], "does not exist"),
    (["validate", "{tmp}", "--plot", "{tmp}"], "is a directory"),
    (["trackml"], "the following arguments are required: --out, --events"),
    (["pileup"], "the following arguments are required: --out, --events"),
    (["pileup", "--out", "{tmp}/o", "--events", "2", "--mu", "-1"], "-1.0 is not a finite number >= 0"),
    (["pileup", "--out", "{tmp}/afile", "--events", "2"], "exists and is not a directory"),
    (["higgs"], "invalid choice: 'higgs'"),
])
def test_cli_bad_arguments_one_line_exit_2(tmp_path, argv, message):
    import subprocess
    import sys

    (tmp_path / "afile").write_text("x")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    res = subprocess.run([sys.executable, "-m", "partx.datagen", *argv], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.root"))


def test_cli_accepts_real_split_directory_names():
    from partx.datagen.__main__ import _splits

    assert _splits("test_20M,train") == ["test", "train"]


# ----------------------------------------------------------------------------- physics
def test_soft_drop_mass_peaks(tiny):
    med = {s: float(np.median(ak.to_numpy(_read(tiny, s).jet_sdmass))) for s in schema.STEMS}
    assert 140 < med["TTBar"] < 200, med
    assert 65 < med["WToQQ"] < 95, med
    assert 75 < med["ZToQQ"] < 105, med
    for h in ("HToBB", "HToCC", "HToGG"):
        assert 105 < med[h] < 135, med
    assert med["ZJetsToNuNu"] < 60, med


def test_displaced_tracks_hbb_vs_qcd(tiny):
    def frac(stem):
        a = _read(tiny, stem)
        charged = a.part_charge != 0
        sig = abs(a.part_d0val[charged]) / a.part_d0err[charged]
        return float(np.mean(ak.to_numpy(ak.sum(sig > 3, axis=1)) >= 2))

    assert frac("HToBB") > frac("ZJetsToNuNu") + 0.2


def test_d0_error_shrinks_with_pt(tiny):
    a = _read(tiny, "TTBar")
    ch = a.part_charge != 0
    pt = ak.to_numpy(ak.flatten(np.hypot(a.part_px, a.part_py)[ch]))
    err = ak.to_numpy(ak.flatten(a.part_d0err[ch]))
    assert np.median(err[pt < 2]) > 2 * np.median(err[pt > 10])


def test_detector_merges_neutrals():
    """Same events (same seed) with and without the detector: towers merge neutral particles."""
    common = dict(seed=7, classes=["TTBar"], splits=["train"])
    n = {}
    for det in (False, True):
        task = jetclass.plan("/nonexistent", 12, detector=det, **common)[0]
        a = jetclass.generate_arrays(task)
        neutral = (a["part_isPhoton"] + a["part_isNeutralHadron"]) > 0
        n[det] = float(np.mean(ak.to_numpy(ak.sum(neutral, axis=1))))
    assert n[True] < 0.8 * n[False], n


# ----------------------------------------------------------------------------- determinism & resume
def test_same_seed_same_arrays():
    task = jetclass.plan("/nonexistent", 8, seed=3, classes=["ZToQQ"], splits=["val"])[0]
    a, b = jetclass.generate_arrays(task), jetclass.generate_arrays(task)
    for k in schema.branch_types():
        assert ak.all(ak.ravel(a[k]) == ak.ravel(b[k])), k
    other = jetclass.plan("/nonexistent", 8, seed=4, classes=["ZToQQ"], splits=["val"])[0]
    assert not np.array_equal(jetclass.generate_arrays(other)["jet_pt"], a["jet_pt"])


def test_splits_have_disjoint_seeds():
    seqs = {t.split: t.seed_sequence().generate_state(1)[0] for t in jetclass.plan("/x", 8, classes=["HToBB"])}
    assert len(set(seqs.values())) == 3


def test_rerun_skips_and_temp_not_complete(tiny, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(tiny, out)
    target = out / "Pythia" / schema.SPLITS[1] / "WToQQ_120.root"
    target.unlink()
    tmp = target.with_name(f".{target.stem}.x1y2z3.tmp.root")  # atomic_path's name for an unfinished file
    tmp.write_bytes(b"interrupted")  # a half-written file under its temporary name
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.root") if not p.name.startswith(".")}
    t0 = time.perf_counter()
    jetclass.generate(out, jetclass.PRESETS["tiny"], seed=0, workers=1, progress=False)
    assert target.exists() and time.perf_counter() - t0 < 20
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before  # complete files were skipped
    assert not tmp.exists()  # the interrupted run's temp file was cleaned up
    validate_dir(out)
    a, b = _arrays_of(target), _arrays_of(tiny / "Pythia" / schema.SPLITS[1] / "WToQQ_120.root")
    assert np.array_equal(ak.to_numpy(a["jet_pt"]), ak.to_numpy(b["jet_pt"]))


def test_rerun_with_other_parameters_is_refused(tiny, tmp_path):
    from partx.datagen.__main__ import main

    out = tmp_path / "other"
    shutil.copytree(tiny, out)
    good = out / "Pythia" / schema.SPLITS[1] / "ZToQQ_120.root"
    before = good.read_bytes()
    for argv in (["--jets-per-class", "48"], ["--preset", "tiny", "--seed", "5"]):
        with pytest.raises(jetclass.GenerationMismatch, match="was generated with jets="):
            jetclass.generate(out, 48 if "48" in argv else 24, seed=5 if "5" in argv else 0, progress=False)
        assert main(["jetclass", "--out", str(out), "--quiet", *argv]) == 2
    assert good.read_bytes() == before  # nothing overwritten
    assert main(["jetclass", "--out", str(out), "--preset", "tiny", "--quiet"]) == 0  # same parameters: all skipped


# ----------------------------------------------------------------------------- weaver
def test_weaver_reads_generated_files(tiny, tmp_path):
    pytest.importorskip("weaver")
    torch = pytest.importorskip("torch")
    from weaver.utils.dataset import SimpleIterDataset

    yaml_src = REPO / "data" / "JetClass" / "JetClass_full.yaml"
    if not yaml_src.exists():
        pytest.skip("data/JetClass/JetClass_full.yaml not present")
    cfg = tmp_path / "JetClass_full.yaml"
    shutil.copy(yaml_src, cfg)
    files = sorted(str(p) for p in (tiny / "Pythia" / schema.SPLITS[0]).glob("*.root"))
    ds = SimpleIterDataset({"_": files}, str(cfg), for_training=False,
                           fetch_by_files=True, fetch_step=len(files), in_memory=False, name="test")
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=0)
    X, y, _ = next(iter(loader))
    assert X["pf_features"].shape[0] == 16 and torch.isfinite(X["pf_features"]).all()
