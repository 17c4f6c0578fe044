"""Pileup data (partx.datagen.pileup, partx.readers.pileup): generator physics and labels, HEPT equivalence,
the processed-data contract, both Delphes layouts, bad inputs.

The HEPT fixture (tests/fixtures/pileup_hept/, MAKE.md) holds a 3-event Delphes-style PF file and the
outputs of HEPT's own ``process_one_event`` on it, run outside the project.
"""

from __future__ import annotations

import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import assert_user_error, call, snapshot  # noqa: E402

from partx.cli import run_main  # noqa: E402
from partx.datagen.__main__ import main as datagen_main  # noqa: E402
from partx.datagen.pileup import generate as gen  # noqa: E402
from partx.datagen.pileup.events import PF_DTYPES  # noqa: E402
from partx.datagen.pileup.writer import write_delphes  # noqa: E402
from partx.readers.pileup import delphes  # noqa: E402
from partx.readers.pileup.__main__ import main as reader_main  # noqa: E402
from partx.readers.pileup.event import FEATURES, PART_DTYPES, process_event  # noqa: E402
from partx.readers.pileup.preprocess import preprocess  # noqa: E402
from partx.readers.pileup.rootio import read_events  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "pileup_hept"
MU = 15


def _reader(argv):
    return run_main(reader_main, argv)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """3 events at μ = 15 from the generator's command line (one Pythia setup for the whole module)."""
    out = tmp_path_factory.mktemp("pileup") / "raw"
    assert datagen_main(["pileup", "--out", str(out), "--events", "3", "--mu", str(MU), "--seed", "3",
                         "--events-per-file", "2", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def processed(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pileup") / "ds"
    preprocess([raw], out, progress=False, log=lambda m: None)
    return out


def _read_raw(path: Path) -> list[dict[str, np.ndarray]]:
    return [delphes.event_arrays(chunk, i) for _, chunk in delphes.iterate(path) for i in range(len(chunk["PT"]))]


# ------------------------------------------------------------------------------------ generator
def test_generator_files_and_resume(raw, capsys):
    names = sorted(p.name for p in raw.glob("*.root"))
    # 3 events: part 1 (training) one event, part 2 (val + test) two, 2 events per file
    assert names == ["pileup_part1_00000.root", "pileup_part2_00000.root"]
    t = uproot.open(raw / "pileup_part2_00000.root")["Delphes"]
    assert t["Event.Number"].array().tolist() == [1, 2]
    types = t.typenames()
    assert types["PF_size"] == "int32_t"
    for k, dt in PF_DTYPES.items():
        assert types[f"PF.{k}"] == {"float32": "float[]", "int32": "int32_t[]"}[dt], k
    before = snapshot(raw)
    assert datagen_main(["pileup", "--out", str(raw), "--events", "3", "--mu", str(MU), "--seed", "3",
                         "--events-per-file", "2", "--quiet"]) == 0
    assert "already" in capsys.readouterr().out and snapshot(raw) == before
    res = call(lambda a: run_main(datagen_main, a), ["pileup", "--out", raw, "--events", "3", "--mu", "20",
                                                     "--seed", "3", "--events-per-file", "2", "--quiet"], capsys)
    assert_user_error(res, "other parameters", "mu=15.0")
    assert snapshot(raw) == before


def test_interrupt_leaves_finished_files_only_and_resumes(raw, tmp_path, monkeypatch):
    """Ctrl-C while a file is being generated: finished files stay, no partial or hidden file; a rerun
    completes the set with the same events (they depend on (seed, event id) only)."""
    settings = gen.Settings(seed=3, mu=float(MU), events=3, events_per_file=2)  # the module's source is reused
    src = gen._STATE["source"]
    real = src.event

    def stop_at_2(e):
        if e == 2:
            raise KeyboardInterrupt
        return real(e)

    monkeypatch.setattr(src, "event", stop_at_2)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(tmp_path, settings, progress=False, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partx_pileup.json", "pileup_part1_00000.root"]
    monkeypatch.setattr(src, "event", real)
    logs = []
    stats = gen.generate(tmp_path, settings, progress=False, log=logs.append)
    assert [st.event_id for st in stats] == [1, 2] and "resuming: 1 of 2 files" in logs[0]
    for a, b in zip(_read_raw(tmp_path / "pileup_part2_00000.root"), _read_raw(raw / "pileup_part2_00000.root")):
        for k in delphes.FIELDS:
            np.testing.assert_array_equal(a[k], b[k])


def test_events_deterministic_and_labels_exact(raw):
    """Event k depends on (seed, k) only; hard-scatter candidates (IsPU 0) are exactly those of the same
    event generated without pileup; every other candidate is IsPU 1."""
    src = gen._STATE["source"]  # the generator's in-process source (seed 3, μ 15)
    assert (src.seed, src.pileup) == (3, MU)
    files = _read_raw(raw / "pileup_part1_00000.root") + _read_raw(raw / "pileup_part2_00000.root")
    again = src.event(1)
    for k in PF_DTYPES:
        if k in files[1]:
            np.testing.assert_array_equal(files[1][k], again[k], err_msg=k)
    f, n_pu = src.truth(1)
    src.pileup = 0.0
    try:
        alone = src.event(1)
    finally:
        src.pileup = float(MU)
    assert (alone["IsPU"] == 0).all() and n_pu > 0
    ev = again
    hs_charged = (ev["IsPU"] == 0) & (ev["Charge"] != 0)
    al_charged = alone["Charge"] != 0  # charged candidates: no smearing, so exactly the same
    for k in ("PT", "Eta", "Phi", "PID", "Charge"):
        np.testing.assert_array_equal(np.sort(ev[k][hs_charged]), np.sort(alone[k][al_charged]), err_msg=k)
    # neutral hard-scatter candidates: same particles before the energy threshold; labels 0 and 1 only
    assert set(np.unique(ev["IsPU"])) == {0, 1}
    assert (ev["IsPU"] == 0).sum() >= hs_charged.sum()


def test_multiplicity_scales_with_mu(raw):
    """Pileup candidates per pileup collision (SoftQCD:inelastic at 14 TeV, |η| < 2.5 charged pT > 0.1,
    |η| < 4 neutrals over threshold) lie in a physical range; at μ = 200 this gives ~13k per event."""
    src = gen._STATE["source"]
    per = []
    for e in range(3):
        f, n_pu = src.truth(e)
        ev = src.event(e)
        assert n_pu == int((np.unique(f["coll"]) > 0).sum())  # every pileup collision leaves particles
        per.append((ev["IsPU"] == 1).sum() / n_pu)
        assert 3 <= n_pu <= 35  # Poisson(15)
    assert 35 < np.mean(per) < 110, per


# ------------------------------------------------------------------------------------ reader vs HEPT
def _rows(x, y, is_neu) -> np.ndarray:
    m = np.column_stack([x.astype(np.float64), y, is_neu])
    return m[np.lexsort(m.T[::-1])]


def test_reader_equals_hept_fixture():
    ref = np.load(FIX / "hept_outputs.npz")
    evs = _read_raw(FIX / "delphes_pf.root")
    assert [len(e["PT"]) for e in evs] == ref["n"].tolist()
    off = np.concatenate([[0], np.cumsum(ref["n"])])
    for i, ev in enumerate(evs):
        out = process_event(ev, i, 42, "fixture")
        x = np.stack([out[f"part_{k}"] for k in FEATURES], 1)
        sl = slice(off[i], off[i + 1])
        assert x.dtype == ref["x"].dtype == np.float32
        np.testing.assert_array_equal(_rows(x, out["part_is_lv"], out["part_is_scored"]),
                                      _rows(ref["x"][sl], ref["y"][sl], ref["is_neu"][sl]))
        np.testing.assert_array_equal(np.sort(ref["pos"][sl], 0), np.sort(x[:, :2], 0))  # pos = (eta, phi)
        # partx's permutation: a real shuffle, reproducible from (seed, event id)
        assert not np.array_equal(x[:, 4], ev["PT"])
        again = process_event(ev, i, 42, "fixture")
        np.testing.assert_array_equal(again["part_pt"], out["part_pt"])


def test_both_layouts_read_alike(tmp_path):
    """uproot's default record naming (nPF, PF_PT) reads as partx's (PF_size, PF.PT); a real Delphes tree's
    TClonesArray path PF/PF.PT is tried first."""
    evs = _read_raw(FIX / "delphes_pf.root")
    counts = [len(e["PT"]) for e in evs]
    pf = ak.zip({k: ak.unflatten(np.concatenate([e[k] for e in evs]), counts) for k in delphes.FIELDS})
    with uproot.recreate(tmp_path / "plain.root") as f:
        f.mktree("Delphes", {"PF": pf.type.content}).extend({"PF": pf})
    assert "PF_PT" in uproot.open(tmp_path / "plain.root")["Delphes"].keys()
    for a, b in zip(_read_raw(tmp_path / "plain.root"), evs):
        for k in delphes.FIELDS:
            np.testing.assert_array_equal(a[k], b[k])

    class RealDelphes(dict):  # what uproot answers for a real file: only the TClonesArray paths
        pass

    tree = RealDelphes({f"PF/PF.{k}": None for k in delphes.FIELDS})
    assert delphes.resolve(tree, "x")["IsPU"] == "PF/PF.IsPU"


# ------------------------------------------------------------------------------------ contract
def test_processed_contract(processed, raw):
    d = processed / "processed"
    files = {s: sorted((d / s).glob("*.root")) for s in ("train", "val", "test")}
    assert {s: [p.name for p in v] for s, v in files.items()} == {s: ["pileup_00000.root"] for s in files}
    t = uproot.open(files["val"][0])["Events"]
    types = t.typenames()
    assert types["event_id"] == "int64_t" and types["n_particles"] == "int32_t"
    assert {k for k in types if k.startswith("part_")} == {f"part_{k}" for k in PART_DTYPES}
    assert all(types[f"part_{k}"] == "float[]" for k in PART_DTYPES)
    ids = {s: read_events(files[s][0])["event_id"].tolist() for s in files}
    assert ids["train"] == [0] and sorted(ids["val"] + ids["test"]) == [1, 2]  # part 1 trains
    raw_evs = _read_raw(raw / "pileup_part1_00000.root")
    a = read_events(files["train"][0])[0]
    assert a["n_particles"] == len(raw_evs[0]["PT"])
    np.testing.assert_array_equal(np.sort(ak.to_numpy(a["part_pt"])), np.sort(raw_evs[0]["PT"]))
    lv = ak.to_numpy(a["part_is_lv"])
    assert lv.sum() == (raw_evs[0]["IsPU"] == 0).sum()
    sc = ak.to_numpy(a["part_is_scored"]).astype(bool)
    assert (ak.to_numpy(a["part_charge"])[sc] == 0).all() and (ak.to_numpy(a["part_pt"])[sc] > 0.9).all()
    assert set(np.unique(ak.to_numpy(a["part_pid_class"]))) <= set(range(7))


def test_preprocess_keeps_and_rebuilds(processed, raw):
    d = processed / "processed"
    before = snapshot(d)
    assert preprocess([raw], processed, progress=False, log=lambda m: None)["skipped"]
    assert snapshot(d) == before
    old = {s: read_events(d / s / "pileup_00000.root").tolist() for s in ("train", "val", "test")}
    preprocess([raw], processed, force=True, progress=False, log=lambda m: None)
    assert snapshot(d) != before  # rewritten (ROOT files hold their creation time)...
    for s in old:  # ...with the same content: the permutations and the split depend on the seed only
        assert read_events(d / s / "pileup_00000.root").tolist() == old[s]


# ------------------------------------------------------------------------------------ bad inputs
def _edit(tmp_path: Path, name: str, edit) -> Path:
    evs = _read_raw(FIX / "delphes_pf.root")
    full = [{k: e.get(k, np.zeros(len(e["PT"]))).astype(dt) for k, dt in PF_DTYPES.items()} for e in evs]
    edit(full)
    return write_delphes(tmp_path / name / "raw.root", full, list(range(len(full))))


def test_bad_inputs(tmp_path, capsys):
    run = lambda *a: call(_reader, ["preprocess", "--no-progress", "--out", tmp_path / "out", "--raw", *a], capsys)  # noqa: E731
    assert_user_error(run(tmp_path / "nope.root"), "nope.root", "does not exist")
    (tmp_path / "corrupt.root").write_bytes((FIX / "delphes_pf.root").read_bytes()[:3000])
    assert_user_error(run(tmp_path / "corrupt.root"), "corrupt.root")
    (tmp_path / "empty_dir").mkdir()
    assert_user_error(run(tmp_path / "empty_dir"), "no .root file")
    # a missing PF member
    evs = _read_raw(FIX / "delphes_pf.root")
    counts = [len(e["PT"]) for e in evs]
    pf = ak.zip({k: ak.unflatten(np.concatenate([e[k] for e in evs]), counts) for k in delphes.FIELDS if k != "IsPU"})
    (tmp_path / "nopu").mkdir()
    with uproot.recreate(tmp_path / "nopu" / "raw.root") as f:
        f.mktree("Delphes", {"PF": pf.type.content}).extend({"PF": pf})
    assert_user_error(run(tmp_path / "nopu" / "raw.root"), "IsPU", "PF/PF.IsPU")

    def nan(evs):
        evs[1]["Eta"][5] = np.nan
    assert_user_error(run(_edit(tmp_path, "nan", nan)), "event 1", "PF.Eta", "NaN")

    def empty(evs):
        evs[2] = {k: v[:0] for k, v in evs[2].items()}
    assert_user_error(run(_edit(tmp_path, "empty", empty)), "event 2", "empty")

    def unknown(evs):
        i = int(np.flatnonzero(evs[0]["Charge"] == 0)[3])
        evs[0]["PID"][i] = 111
    assert_user_error(run(_edit(tmp_path, "pid", unknown)), "raw.root", "event 0", "PID 111")
    assert_user_error(run(write_delphes(tmp_path / "none" / "raw.root", [], [])), "no events")
    assert not (tmp_path / "out" / "processed" / "train").exists()  # nothing half-written


# ------------------------------------------------------------------------------------ HEPT's processed zip
def test_convert_hept_zip(tmp_path, capsys):
    """A genuine PyG 2.5.3 pickle made by HEPT's Pileup code (MAKE.md) converts to HEPT's split and rows."""
    ref = np.load(FIX / "hept_processed_expected.npz")
    res = call(_reader, ["convert-hept", FIX / "pileup-10k-processed.zip", "--out", tmp_path, "--no-progress"], capsys)
    assert res.returncode == 0, res.stderr
    off = ref["slices"]
    for theirs, ours in (("train", "train"), ("valid", "val"), ("test", "test")):
        rows = read_events(tmp_path / "processed" / ours / "pileup_00000.root")
        assert rows["event_id"].tolist() == ref[theirs].tolist()
        for r, i in zip(rows, ref[theirs]):
            sl = slice(off[i], off[i + 1])
            x = np.stack([ak.to_numpy(r[f"part_{k}"]) for k in FEATURES], 1)
            np.testing.assert_array_equal(x, ref["x"][sl])  # HEPT's stored order is kept
            np.testing.assert_array_equal(ak.to_numpy(r["part_is_lv"]), ref["y"][sl])
            np.testing.assert_array_equal(ak.to_numpy(r["part_is_scored"]), ref["is_neu"][sl])
            np.testing.assert_array_equal(ak.to_numpy(r["part_charge"]) != 0, x[:, 7] == 0)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    assert_user_error(call(_reader, ["convert-hept", tmp_path / "bad.zip", "--out", tmp_path / "o"], capsys),
                      "bad.zip", "not a readable zip")


# ------------------------------------------------------------------------------------ launcher hook
def test_launcher_data_dir(tmp_path, monkeypatch, capsys):
    from partx.readers.pileup import datasets

    monkeypatch.delenv("DATADIR_Pileup", raising=False)
    monkeypatch.setenv("PARTX_PILEUP_DEFAULT_DIR", str(tmp_path / "gen"))
    empty = tmp_path / "Pileup"
    # untouched default without data: the generated default is named (dry run: nothing made)
    assert datasets.launcher_data_dir(str(empty), "kin", str(empty), dry_run=True) == tmp_path / "gen"
    assert "generated default" in capsys.readouterr().err and not (tmp_path / "gen").exists()
    # another folder without data: one-line error
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(datasets.UserError, match="no pileup data"):
        datasets.launcher_data_dir(str(other), "kin", str(empty))
    # HEPT's extracted data.pt: converted on first use, then used as is
    hept = tmp_path / "hept"
    import zipfile

    with zipfile.ZipFile(FIX / "pileup-10k-processed.zip") as z:
        z.extractall(hept / "processed")
    assert datasets.launcher_data_dir(str(hept), "kin", str(empty)) == hept
    assert sorted(p.name for p in (hept / "processed" / "val").glob("*.root")) == ["pileup_00000.root"]
    assert (hept / "processed" / datasets.HEPT_DONE).exists()


def test_generated_default_made_on_first_use(tmp_path, monkeypatch):
    from partx.readers.pileup import datasets

    monkeypatch.delenv("DATADIR_Pileup", raising=False)
    monkeypatch.setenv("PARTX_PILEUP_DEFAULT_DIR", str(tmp_path / "gen"))
    monkeypatch.setenv("PARTX_PILEUP_EVENTS", "3")
    monkeypatch.setenv("PARTX_PILEUP_MU", "0")  # no minimum-bias Pythia to set up: a faster child process
    empty = str(tmp_path / "Pileup")
    assert datasets.launcher_data_dir(empty, "kin", empty) == tmp_path / "gen"
    d = tmp_path / "gen" / "processed"
    assert all(len(list((d / s).glob("*.root"))) == 1 for s in ("train", "val", "test"))
    before = snapshot(d)
    assert datasets.launcher_data_dir(empty, "kin", empty) == tmp_path / "gen"  # second use: nothing redone
    assert snapshot(d) == before


def test_get_datasets_pileup_downloads_and_converts(tmp_path, monkeypatch):
    """``get_datasets.py Pileup`` (its mirror pointed at a local server holding the fixture zip): download,
    extract into processed/, convert into processed/{train,val,test}, record DATADIR_Pileup."""
    import functools
    import shutil
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import get_datasets

    served = tmp_path / "www"
    served.mkdir()
    shutil.copyfile(FIX / "pileup-10k-processed.zip", served / "pileup-10k-processed.zip")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.delenv("PARTX_DATASET_MIRROR", raising=False)
    try:
        rc = get_datasets.main(["Pileup", "-d", str(tmp_path / "d"), "-e", str(tmp_path / "env.sh"), "--no-progress",
                                "--mirror", f"http://127.0.0.1:{httpd.server_address[1]}"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert rc == 0
    ds = tmp_path / "d" / "Pileup"
    assert (ds / "processed" / "data.pt").is_file()
    for s, ids in (("train", [0]), ("val", [1]), ("test", [2])):
        assert read_events(ds / "processed" / s / "pileup_00000.root")["event_id"].tolist() == ids
    assert "DATADIR_Pileup=" in (tmp_path / "env.sh").read_text()
