"""TrackML preprocessing (partx.readers.trackml): HEPT equivalence, sectors, split, weaver, errors, resume.

The HEPT fixture (tests/fixtures/trackml_hept/, MAKE.md) holds two tiny hand-made TrackML-format events, one
event of partx's generator, and the outputs of HEPT's own preprocessing code run on them outside the project
(plus HEPT-format processed zips of the hand-made events).
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import trackml_tiny  # noqa: E402

from partx.cli import run_main  # noqa: E402
from partx.datagen.trackml.io import read_detectors, read_event  # noqa: E402
from partx.readers.trackml import preprocess as pre  # noqa: E402
from partx.readers.trackml.__main__ import main as cli_main  # noqa: E402
from partx.readers.trackml.event import build_event  # noqa: E402
from partx.readers.trackml.features import DetectorTable  # noqa: E402
from partx.readers.trackml.rootio import FEATURE_BRANCHES, read_rows  # noqa: E402
from partx.readers.trackml.sectors import SET_LENGTHS, SETS, coverage_half_angle, sector_hits  # noqa: E402
from partx.readers.trackml.split import hept_graph_split, split_events  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "trackml_hept"
RAW = FIX / "handmade"
COORDS = ("hit_pos_eta", "hit_pos_phi", "hit_r", "hit_phi", "hit_z", "hit_eta_rz")


#: HEPT computes phi, eta_rz, u, v in float32 (so does partx, to match it). numpy's float32 arctan2 / tan / log
#: take CPU-specific SIMD paths (AVX-512: SVML; AVX2: numpy's own), which differ by a few ulp, and
#: eta = -log(tan(theta / 2)) amplifies that at large |eta|: the fixture, made on an AVX-512 machine, differs
#: from an AVX2 machine's partx by up to 2.3e-6 relative in the hits' eta_rz and 1.5e-5 in the particles' eta
#: (from pT, pz; |eta| ~ 4). 5e-5 is ~400 float32 ulp: far below any formula or ordering error (those move
#: values by O(1e-2) or more).
F32_RTOL, F32_ATOL = 5e-5, 1e-6


def _event(e: int, raw: Path = RAW):
    return build_event(e, read_event(raw, e), DetectorTable(read_detectors(raw)))


@pytest.mark.parametrize("folder,events", [(RAW, (1000, 1001)), (FIX / "gen", (1000,))], ids=["handmade", "generator"])
def test_features_coords_labels_equal_hept(folder, events):
    """partx == HEPT's own preprocessing on the same CSVs: hand-made events (every sector count) and an event of
    partx's generator (1, 3, 10 sectors)."""
    hept = np.load(folder / "hept_outputs.npz")
    counts = sorted({int(k.split("_")[0][1:]) for k in hept.files})
    checked = 0
    for e in events:
        ev = _event(e, folder)
        assert (ev.particle_id == 0).any() and (~ev.reconstructable[ev.particle_id > 0]).any()
        for n in counts:
            rows = pre.event_rows(ev, n)
            assert len(rows) == n
            for r in rows:
                k = f"n{n}_e{e}_s{r['sector_id']}"
                x = np.stack([r[b] for b in FEATURE_BRANCHES], axis=1)
                np.testing.assert_allclose(x, hept[k + "_x"], rtol=F32_RTOL, atol=F32_ATOL, err_msg=k)
                np.testing.assert_allclose(np.stack([r[b] for b in COORDS], 1), hept[k + "_coords"], rtol=F32_RTOL,
                                           atol=F32_ATOL)
                for ours, theirs in (("hit_particle_id", "particle_id"), ("hit_reconstructable", "reconstructable"),
                                     ("hit_sector", "sector"), ("hit_layer_id", "layer"), ("hit_pt", "pt"),
                                     ("hit_particle_nhits", "n_hits"), ("hit_particle_nlayers", "n_layers_hit")):
                    np.testing.assert_array_equal(np.asarray(r[ours]), hept[f"{k}_{theirs}"], err_msg=f"{k} {ours}")
                # HEPT leaves the particle eta of noise hits NaN (its noise rows lack eta_pt); partx writes 0
                np.testing.assert_allclose(r["hit_particle_eta"], np.nan_to_num(hept[k + "_eta"]), rtol=F32_RTOL)
                checked += len(x)
    assert checked > 1000


def test_hept_processed_zips_convert_to_the_same_rows(tmp_path):
    from partx.readers.trackml.hept_zip import convert_hept

    for zname, set_name in (("tracking-6k-processed.zip", "6k"), ("tracking-60k-processed.zip", "full")):
        info = convert_hept(FIX / zname, tmp_path, progress=False)
        assert info["set"] == set_name and info["unpickler"] in ("shim", "torch_geometric")
        if "torch_geometric" not in sys.modules:
            assert info["unpickler"] == "shim"
        files = sorted((tmp_path / "processed" / set_name).glob("*/*.root"))
        assert files
        for f in files:
            got = read_rows(f)
            e = int(got.event_id[0])
            ours = {r["sector_id"]: r for r in pre.event_rows(_event(e), SETS[set_name])}
            for i, s in enumerate(got.sector_id.to_list()):
                for b in FEATURE_BRANCHES + COORDS + ("hit_particle_id", "hit_sector", "hit_reconstructable"):
                    np.testing.assert_allclose(got[b][i].to_numpy(), ours[s][b], rtol=1e-6, atol=1e-7, err_msg=b)
            # hit_particle_index: a dense relabelling per file, one index per particle_id, 0 = noise
            pid, idx = (np.asarray(ak_flat(got[b])) for b in ("hit_particle_id", "hit_particle_index"))
            assert len(np.unique(np.stack([pid, idx]), axis=1).T) == len(np.unique(pid))
            assert ((pid == 0) == (idx == 0)).all()


def ak_flat(a):
    import awkward as ak
    return ak.flatten(a).to_numpy()


def test_hept_file_errors(tmp_path, monkeypatch):
    from partx.readers.trackml import hept_zip
    from partx.readers.trackml.hept_zip import HEPTFileError, convert_hept

    class Unknown(hept_zip._ShimUnpickler):  # a PyG layout the shim does not know
        def find_class(self, module, name):
            raise RuntimeError("unknown layout")

    monkeypatch.setattr(hept_zip._shim, "Unpickler", Unknown)
    monkeypatch.setitem(sys.modules, "torch_geometric", None)  # not installed
    with pytest.raises(HEPTFileError, match="pip install torch_geometric"):
        convert_hept(FIX / "tracking-6k-processed.zip", tmp_path / "o", progress=False)
    monkeypatch.undo()

    bad = tmp_path / "tracking-6k-processed.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(HEPTFileError, match="not a readable zip"):
        convert_hept(bad, tmp_path / "o", progress=False)
    pt = tmp_path / "data-6k.pt"
    pt.write_bytes(b"\x00" * 100)
    with pytest.raises(HEPTFileError, match="not a torch.save file"):
        convert_hept(pt, tmp_path / "o", progress=False)


def _ring_event(seed=7, n_particles=300):
    """A denser hand-made event (uniform in phi) for the sector tests."""
    d = trackml_tiny.make_event(seed, n_particles=n_particles, n_noise=40)
    return build_event(seed, d, DetectorTable(trackml_tiny.detectors()))


@pytest.mark.parametrize("n", [6, 10, 20])
def test_every_hit_of_reconstructable_particles_is_in_a_sector(n):
    ev = _ring_event()
    covered = np.zeros(len(ev), bool)
    for rows, _ in sector_hits(ev, n):
        covered[rows] = True
    assert covered[ev.reconstructable].all()
    assert covered.all()  # n >= 6: HEPT's extended sectors cover all of phi


@pytest.mark.parametrize("n", [2, 3])
def test_two_and_three_sectors_leave_hepts_phi_gaps(n):
    """HEPT's slope = arctan(pi/n) makes the extended half-angle smaller than pi/n for n = 2, 3: the hits
    outside are exactly those farther than that angle from every sector axis (documented, kept exact)."""
    ev = _ring_event()
    half = coverage_half_angle(n)
    assert half < np.pi / n
    covered = np.zeros(len(ev), bool)
    for rows, _ in sector_hits(ev, n):
        covered[rows] = True
    phi = np.arctan2(ev.feature("v"), ev.feature("u"))
    off = np.abs((phi + np.pi / n) % (2 * np.pi / n) - np.pi / n)  # angle to the nearest sector axis
    np.testing.assert_array_equal(covered, off < half)
    assert 0 < (~covered).sum() < len(ev)


def test_reconstructable_is_computed_on_the_whole_event():
    ev = _ring_event()
    found = 0
    for r in pre.event_rows(ev, 20):
        pid, rec, lay = r["hit_particle_id"], r["hit_reconstructable"], r["hit_layer_id"]
        for p in np.unique(pid[(pid > 0) & rec]):
            if len(np.unique(lay[pid == p])) < 3:
                found += 1  # a reconstructable particle with < 3 layers inside this sector keeps its flag
    assert found > 0
    n_layers = {p: len(np.unique(ev.layer[ev.particle_id == p])) for p in np.unique(ev.particle_id)}
    np.testing.assert_array_equal(ev.reconstructable,
                                  [(p > 0) and n_layers[p] >= 3 for p in ev.particle_id])


def test_split_by_event_80_10_10():
    s = split_events([1009, 1000, 1005, 1001, 1002, 1003, 1004, 1006, 1007, 1008])
    assert s == {"train": list(range(1000, 1008)), "val": [1008], "test": [1009]}
    assert split_events(range(25)) == {"train": list(range(20)), "val": [20, 21], "test": [22, 23, 24]}
    assert split_events([3, 1, 2]) == {"train": [1], "val": [2], "test": [3]}  # tiny sets: val, test not empty
    h = hept_graph_split(np.repeat(np.arange(20, 0, -1), 10))  # 20 events x 10 sectors, reversed
    assert len(h["train"]) == 160 and len(h["val"]) == 20 and len(h["test"]) == 20


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    root = tmp_path_factory.mktemp("tml")
    raw = trackml_tiny.write_events(root / "raw", list(range(2000, 2010)), n_particles=20)
    pre.preprocess(raw, root, list(SETS), progress=False)
    return root


def test_output_layout_split_and_resume(processed, capsys):
    out = processed / "processed"
    assert sorted(p.name for p in (out / "full" / "train").iterdir()) == [f"event{e:09d}.root" for e in range(2000, 2008)]
    assert [p.name for p in (out / "6k" / "val").iterdir()] == ["event000002008.root"]
    assert [p.name for p in (out / "6k" / "test").iterdir()] == ["event000002009.root"]
    a = read_rows(out / "6k" / "train" / "event000002003.root")
    assert a.sector_id.to_list() == list(range(10)) and set(a.event_id.to_list()) == {2003}
    assert not list(out.rglob(".*.tmp*"))
    victim = out / "6k" / "train" / "event000002004.root"
    keep = out / "full" / "train" / "event000002004.root"
    mtime = keep.stat().st_mtime_ns
    victim.unlink()
    stats = pre.preprocess(processed / "raw", processed, list(SETS), progress=False)
    assert stats["events"] == 1 and victim.exists() and keep.stat().st_mtime_ns == mtime
    assert "resuming: 9 of 10 event(s) already preprocessed" in capsys.readouterr().out


def test_interrupted_run_leaves_no_partial_file(tmp_path, monkeypatch):
    raw = trackml_tiny.write_events(tmp_path / "raw", [1, 2, 3], n_particles=10)
    real = pre.write_rows
    calls = []

    def flaky(path, rows):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, rows)

    monkeypatch.setattr(pre, "write_rows", flaky)
    with pytest.raises(KeyboardInterrupt):
        pre.preprocess(raw, tmp_path, ["full"], progress=False)
    assert len(list((tmp_path / "processed" / "full").rglob("event*.root"))) == 1
    monkeypatch.setattr(pre, "write_rows", real)
    pre.preprocess(raw, tmp_path, ["full"], progress=False)
    assert len(list((tmp_path / "processed" / "full").rglob("event*.root"))) == 3
    # an interrupt inside the real writer (uproot half-way through a file) leaves nothing behind
    import uproot

    def half_written(tmp, **kw):
        Path(tmp).write_bytes(b"root" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(uproot, "recreate", half_written)
    target = tmp_path / "processed" / "full" / "test" / "event000000003.root"
    target.unlink()
    with pytest.raises(KeyboardInterrupt):
        pre.preprocess(raw, tmp_path, ["full"], progress=False)
    assert sorted(p.name for p in target.parent.iterdir()) == []


def test_manifest_mismatch_is_a_user_error(processed, tmp_path):
    raw2 = trackml_tiny.write_events(tmp_path / "raw2", [5, 6], n_particles=5)
    assert run_main(cli_main, ["preprocess", "--raw", str(raw2), "--out", str(processed), "--sets", "full",
                               "--no-progress"]) == 2


@pytest.mark.parametrize("name", list(SETS))
def test_yaml_lengths_and_weaver_load(processed, tmp_path, name):
    import yaml
    cfg = yaml.safe_load((REPO / "data" / "TrackML" / f"TrackML_{name}.yaml").read_text())
    lengths = {v["length"] for v in cfg["inputs"].values()}
    assert lengths == {SET_LENGTHS[name]}
    assert [v[0] for v in cfg["inputs"]["hit_features"]["vars"]] == list(FEATURE_BRANCHES)
    assert [v[0] for v in cfg["inputs"]["hit_points"]["vars"]] == list(COORDS)
    import torch
    from weaver.utils.dataset import SimpleIterDataset

    yml = shutil.copy(REPO / "data" / "TrackML" / f"TrackML_{name}.yaml", tmp_path)
    files = sorted(str(p) for p in (processed / "processed" / name / "train").glob("*.root"))[:2]
    ds = SimpleIterDataset({"_": files}, str(yml), for_training=False, fetch_by_files=True,
                           fetch_step=len(files), async_load=False, name="t")
    X, y, Z = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, num_workers=0)))
    L = SET_LENGTHS[name]
    assert X["hit_features"].shape == (1, 15, L) and X["hit_points"].shape == (1, 6, L)
    ev, s = int(Z["event_id"][0]), int(Z["sector_id"][0])
    row = next(r for r in pre.event_rows(_event_from(processed / "raw", ev), SETS[name]) if r["sector_id"] == s)
    n = len(row["hit_id"])
    assert int(X["hit_mask"].sum()) == n == int(Z["nhit"][0])
    np.testing.assert_allclose(X["hit_features"][0, :, :n].numpy(), np.stack([row[b] for b in FEATURE_BRANCHES]))
    np.testing.assert_array_equal(y["label_particle"][0, :n].numpy(), row["hit_particle_index"])
    assert (y["label_particle"][0, n:] == -1).all() and (X["hit_features"][0, :, n:] == 0).all()


def _event_from(raw, e):
    return _event(e, raw)


def _run(argv, capsys):
    rc = run_main(cli_main, argv)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("damage", ["drop_column", "text_value", "no_detectors", "no_cells", "corrupt_gz",
                                    "unknown_module"])
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, damage):
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    hits = raw / "event000001000-hits.csv.gz"
    import pandas as pd
    if damage == "drop_column":
        pd.read_csv(hits).drop(columns=["module_id"]).to_csv(hits, index=False)
    elif damage == "text_value":
        df = pd.read_csv(hits).astype({"x": object})
        df.loc[3, "x"] = "abc"
        df.to_csv(hits, index=False)
    elif damage == "no_detectors":
        (raw / "detectors.csv").unlink()
    elif damage == "no_cells":
        (raw / "event000001000-cells.csv.gz").unlink()
        (raw / "event000001001-cells.csv.gz").unlink()
    elif damage == "corrupt_gz":
        hits.write_bytes(hits.read_bytes()[:200])
    elif damage == "unknown_module":
        det = pd.read_csv(raw / "detectors.csv")
        det[~((det.volume_id == 8) & (det.layer_id == 2))].to_csv(raw / "detectors.csv", index=False)
    rc, err = _run(["preprocess", "--raw", str(raw), "--out", str(tmp_path / "o"), "--sets", "full",
                    "--no-progress"], capsys)
    assert rc == 2 and err.startswith("ERROR:") and len(err.splitlines()) == 1, err
    assert {"drop_column": "module_id", "text_value": "column x", "no_detectors": "detectors.csv",
            "no_cells": "no complete TrackML event", "corrupt_gz": "hits.csv.gz", "unknown_module": "module"}[damage] in err


def test_kaggle_zips_are_unpacked_verified_and_preprocessed(tmp_path, monkeypatch):
    from partx.readers.trackml.datasets import prepare_local, trackml_data_dir

    (tmp_path / "raw").mkdir()
    with zipfile.ZipFile(tmp_path / "raw" / "train_1.zip", "w") as z:
        for f in RAW.glob("event*"):
            z.write(f, f"train_1/{f.name}")
    with zipfile.ZipFile(tmp_path / "raw" / "detectors.zip", "w") as z:
        z.write(RAW / "detectors.csv", "detectors.csv")
    info = prepare_local(tmp_path, ["full", "3k"], progress=False, log=lambda m: None)
    assert info["raw_events"] == 2
    assert len(list((tmp_path / "processed" / "3k").rglob("*.root"))) == 2
    monkeypatch.setenv("DATADIR_TrackML", str(tmp_path))
    assert trackml_data_dir(["full", "3k"], log=lambda m: None) == tmp_path


def test_default_dir_preprocesses_pregenerated_events(tmp_path, monkeypatch):
    from partx.readers.trackml.datasets import trackml_data_dir

    shutil.copytree(RAW, tmp_path / "raw_events")
    monkeypatch.delenv("DATADIR_TrackML", raising=False)
    monkeypatch.setenv("PARTX_TRACKML_DEFAULT_DIR", str(tmp_path))
    monkeypatch.setenv("PARTX_TRACKML_EVENTS", "2")  # already there: nothing to generate
    assert trackml_data_dir(["10k"], log=lambda m: None) == tmp_path
    assert len(list((tmp_path / "processed" / "10k").rglob("*.root"))) == 2
    monkeypatch.setenv("DATADIR_TrackML", str(tmp_path / "nothing"))
    from partx.cli import UserError
    with pytest.raises(UserError, match="not a directory"):
        trackml_data_dir(["full"])


def test_get_datasets_trackml_local_only(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("get_datasets", REPO / "get_datasets.py")
    gd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gd)
    shutil.copytree(RAW, tmp_path / "TrackML" / "raw_events")
    env = tmp_path / "env.sh"
    argv = ["TrackML", "--local-only", "-d", str(tmp_path), "-e", str(env), "--sets", "6k", "--no-progress"]
    assert run_main(gd.main, argv) == 0
    assert env.read_text() == f"export DATADIR_TrackML={tmp_path / 'TrackML'}\n"
    assert len(list((tmp_path / "TrackML" / "processed" / "6k").rglob("*.root"))) == 2
    capsys.readouterr()
    assert run_main(gd.main, ["JetClass", "--local-only", "-d", str(tmp_path), "--no-env"]) == 2
    assert run_main(gd.main, ["TrackML", "--local-only", "--sets", "5k", "-d", str(tmp_path), "--no-env"]) == 2
    assert "unknown TrackML set(s) 5k" in capsys.readouterr().err


def test_weaver_truncates_to_the_first_hits_and_preprocess_warns(processed, tmp_path, monkeypatch):
    """The padding policy rests on this weaver behaviour: a row longer than `length` keeps its first hits."""
    import torch
    from weaver.utils.dataset import SimpleIterDataset

    text = (REPO / "data" / "TrackML" / "TrackML_full.yaml").read_text().replace(str(SET_LENGTHS["full"]), "16")
    yml = tmp_path / "short.yaml"
    yml.write_text(text)
    f = processed / "processed" / "full" / "train" / "event000002000.root"
    ds = SimpleIterDataset({"_": [str(f)]}, str(yml), for_training=False, fetch_by_files=True, fetch_step=1,
                           async_load=False, name="t")
    X, y, Z = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, num_workers=0)))
    row = read_rows(f)
    assert int(Z["nhit"][0]) > 16 and X["hit_features"].shape[-1] == 16
    np.testing.assert_allclose(X["hit_features"][0, 0].numpy(), row.hit_r[0][:16].to_numpy())
    monkeypatch.setitem(SET_LENGTHS, "full", 10)
    logs = []
    pre.preprocess(processed / "raw", tmp_path / "o", ["full"], progress=False, log=logs.append, max_events=2)
    assert any("more than the 10 of data/TrackML/TrackML_full.yaml" in m for m in logs)


def test_two_workers_give_the_same_files(tmp_path):
    pre.preprocess(RAW, tmp_path / "a", ["15k"], progress=False, workers=1)
    pre.preprocess(RAW, tmp_path / "b", ["15k"], progress=False, workers=2)
    for f in sorted((tmp_path / "a" / "processed" / "15k").rglob("*.root")):
        a, b = read_rows(f), read_rows(tmp_path / "b" / f.relative_to(tmp_path / "a"))
        for field in a.fields:
            assert a[field].to_list() == b[field].to_list(), field


def test_datadir_falls_back_to_converted_hept_files(tmp_path, monkeypatch):
    from partx.readers.trackml.datasets import trackml_data_dir

    with zipfile.ZipFile(FIX / "tracking-6k-processed.zip") as z:
        z.extractall(tmp_path / "processed")  # where get_datasets.py extracts HEPT's zips
    monkeypatch.setenv("DATADIR_TrackML", str(tmp_path))
    assert trackml_data_dir(["6k"], log=lambda m: None) == tmp_path / "hept"
    assert (tmp_path / "hept" / "processed" / "6k" / "train" / "event000001000.root").exists()
    from partx.cli import UserError
    with pytest.raises(UserError, match="no TrackML data for set"):
        trackml_data_dir(["3k"], log=lambda m: None)
