"""Bad-input suite of the tool entry points (issue 9): every case a user can get wrong, per entry point.

    get_datasets.py · python -m partx.datagen jetclass / validate / trackml · analysis/evaluate_jets.py ·
    analysis/benchmark.py · analysis/profile_model.py · analysis/training_size_study.py

(The training side, train_JetClass.sh and partx.preflight, has its own suites.) Every case asserts the
exit status, that a user error is one ``ERROR:`` line without a traceback, and that a good output that
was there before is byte-identical afterwards. Most cases call ``main(argv)`` in-process (a fresh
process changes nothing for them); each entry point also has real subprocess runs for the exit code,
a read-only output folder (a bind mount in a private mount namespace) and Ctrl-C (SIGINT to the
process group once the work has started: exit 130 within seconds, one line, nothing partial where a
later tool would read it, and a rerun that finishes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
import jetclass_fixture  # noqa: E402
from bad_inputs import (  # noqa: E402
    REPO, BadRoot, assert_user_error, call, interrupt, prediction_file, python, readonly_supported, run, snapshot,
)


needs_readonly = pytest.mark.skipif(not readonly_supported(),
                                    reason="needs unshare -rm (user + mount namespaces) for a read-only bind mount")



def assert_interrupted(res, seconds: float) -> None:
    """Ctrl-C: exit 130, one line, no traceback, within seconds."""
    out = res.stdout + res.stderr
    assert res.returncode == 130, (res.returncode, out[-3000:])
    assert "Traceback" not in out, out[-3000:]
    assert [line for line in res.stderr.splitlines() if "interrupted" in line.lower()], res.stderr[-2000:]
    assert seconds < 10, seconds


# ---------------------------------------------------------------------------------------------------
# shared data: one good JetClass file and its damaged copies


@pytest.fixture(scope="module")
def good_root(tmp_path_factory) -> Path:
    return jetclass_fixture.write_file(tmp_path_factory.mktemp("good") / "HToBB_000.root", 40, 1, seed=7)


DAMAGES = {  # name -> (BadRoot factory, what the one error line must mention)
    "zero_byte": (BadRoot.zero_byte, "empty file"),
    "half_truncated": (BadRoot.half_truncated, "truncated"),
    "tail_truncated": (BadRoot.tail_truncated, "truncated"),
    "renamed_branch": (lambda s, d: BadRoot.renamed_branch(s, d, "part_px", "part_PX"), "part_px"),
    "missing_branch": (lambda s, d: BadRoot.missing_branch(s, d, "part_d0val"), "part_d0val"),
    "nan": (lambda s, d: BadRoot.nonfinite(s, d, "part_deta"), "non-finite"),
    "inf": (lambda s, d: BadRoot.nonfinite(s, d, "jet_sdmass", float("inf")), "non-finite"),
    "inf_feature": (lambda s, d: BadRoot.nonfinite(s, d, "part_deta", -float("inf"), entry=0), "non-finite"),
    "empty_jet": (BadRoot.empty_jet, "no constituents"),
    "not_root": (lambda s, d: d.write_text("a text file, not ROOT\n") and d, "not a readable ROOT file"),
}


@pytest.fixture(scope="module")
def bad_root(good_root, tmp_path_factory):
    """``bad_root(name)``: a folder holding one damaged copy of the good file (made once per module)."""
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            d = tmp_path_factory.mktemp(name)
            if name == "tail_cut_after_baskets":  # uproot reads every basket of it: only the end marker tells
                BadRoot.tail_truncated(good_root, d / good_root.name, nbytes=64)
            else:
                DAMAGES[name][0](good_root, d / good_root.name)
            made[name] = d
        return made[name]

    return make


@pytest.fixture
def good_out(tmp_path):
    """A folder with good results of an earlier run (every tool's outputs by name), to be kept intact."""
    out = tmp_path / "good"
    out.mkdir()
    for name in ("m.json", "roc.png", "summary.png", "benchmark.csv", "benchmark.json", "benchmark.md",
                 "trace.json", "profile.md", "results.md"):
        (out / name).write_text(f"good {name}\n")
    (tmp_path / "afile").write_text("a file where a folder is expected\n")
    return out


# ---------------------------------------------------------------------------------------------------
# get_datasets.py (tests/test_get_datasets.py covers downloads, resume, md5, archives and Ctrl-C)


def _get_datasets():
    import importlib.util

    spec = importlib.util.spec_from_file_location("get_datasets_cli", REPO / "get_datasets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GET_DATASETS_BAD = {  # case -> (extra arguments, needle); a request would reach a closed port and exit 1
    "no dataset": ([], "name a dataset"),
    "unknown dataset": (["Jetclass2"], "unknown dataset"),
    "unknown subset": (["JetClass", "--subsets", "training"], "unknown subset"),
    "negative connect timeout": (["JetClass", "--connect-timeout", "-1"], "--connect-timeout"),
    "zero connect timeout": (["JetClass", "--connect-timeout", "0"], "--connect-timeout"),
    "nan read timeout": (["JetClass", "--read-timeout", "nan"], "--read-timeout"),
    "inf read timeout": (["JetClass", "--read-timeout", "inf"], "--read-timeout"),
    "text timeout": (["JetClass", "--read-timeout", "soon"], "--read-timeout"),
    "negative retries": (["JetClass", "--retries", "-1"], "--retries"),
    "malformed checksum": (["JetClass", "--checksum", "nonsense"], "FILE=MD5"),
    "checksum for another file": (["JetClass", "--checksum", "other.tar=" + "0" * 32], "other.tar"),
    "data dir is a file": (["JetClass", "-d", "{tmp}/afile"], "not a directory"),
    "data dir below a file": (["JetClass", "-d", "{tmp}/afile/sub"], "not a directory"),
    "env file is a directory": (["JetClass", "-e", "{tmp}"], "is a directory"),
    "mirror without scheme": (["JetClass", "--mirror", "mirror.example.org/jetclass"], "not an http"),
    "ftp mirror": (["JetClass", "--mirror", "ftp://mirror.example.org/"], "not an http"),
    "unknown option": (["JetClass", "--resume"], "unrecognized arguments"),
}


def _toy_registry():
    from partx import download as dl

    return {"JetClass": dl.DatasetSpec(name="JetClass", files=(dl.RemoteFile(
        name="toy.tar", url="http://127.0.0.1:9/toy.tar", md5="0" * 32, subset="val", extract_to="Pythia"),))}


@pytest.mark.parametrize("case", list(GET_DATASETS_BAD))
def test_get_datasets_bad_request(case, tmp_path, good_out, capsys, monkeypatch):
    monkeypatch.delenv("PARTX_DATASET_MIRROR", raising=False)
    env = good_out / "env.sh"
    env.write_text("export DATADIR_JetClass=/good/path\n")
    before = snapshot(tmp_path)
    args, needle = GET_DATASETS_BAD[case]
    argv = ["-d", tmp_path / "data", "-e", env, "--no-progress", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    mod = _get_datasets()
    res = call(lambda a: mod.run_main(lambda b: mod.main(b, registry=_toy_registry()), a), argv, capsys)
    assert_user_error(res, needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "data").exists()


def test_get_datasets_bad_mirror_from_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PARTX_DATASET_MIRROR", "not-a-url")
    mod = _get_datasets()
    res = call(lambda a: mod.run_main(mod.main, a), ["JetClass", "--subsets", "val", "-d", tmp_path / "data", "--no-env"], capsys)
    assert_user_error(res, "not-a-url", "PARTX_DATASET_MIRROR")
    assert not (tmp_path / "data").exists()


@needs_readonly
def test_get_datasets_read_only_data_dir_keeps_dataset_and_env(tmp_path):
    ds = tmp_path / "datasets" / "JetClass" / "Pythia" / "val_5M"
    ds.mkdir(parents=True)
    (ds / "HToBB_120.root").write_text("good data\n")
    env = tmp_path / "env.sh"
    env.write_text("export DATADIR_JetClass=/good/path\n")
    before = snapshot(tmp_path)
    res = run(python(REPO / "get_datasets.py", "JetClass", "--subsets", "val", "-d", tmp_path / "datasets",
                     "-e", env, "--no-progress", "--mirror", "http://127.0.0.1:9/"), readonly=[tmp_path / "datasets"])
    assert_user_error(res, "cannot write", "Read-only")
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------------
# python -m partx.datagen jetclass


def _datagen(argv, capsys):
    from partx.datagen.__main__ import main

    return call(main, argv, capsys)


DATAGEN_BAD_ARGS = {  # extra arguments after "jetclass --out OUT" -> needle
    "zero jets": (["--jets-per-class", "0"], "positive integer"),
    "negative jets": (["--jets-per-class", "-5"], "positive integer"),
    "text jets": (["--jets-per-class", "many"], "not an integer"),
    "zero workers": (["--workers", "0"], "positive integer"),
    "unknown class": (["--classes", "HToBB,Foo"], "unknown class(es) Foo"),
    "empty classes": (["--classes", ","], "--classes is empty"),
    "unknown split": (["--splits", "train,bogus"], "unknown split 'bogus'"),
    "empty splits": (["--splits", ","], "--splits is empty"),
    "negative seed": (["--seed", "-1"], "non-negative"),
    "unknown preset": (["--preset", "huge"], "invalid choice"),
    "unknown option": (["--events", "5"], "unrecognized arguments"),
}


@pytest.mark.parametrize("case", list(DATAGEN_BAD_ARGS))
def test_datagen_jetclass_bad_arguments(case, tmp_path, capsys):
    args, needle = DATAGEN_BAD_ARGS[case]
    res = _datagen(["jetclass", "--out", tmp_path / "o", *args], capsys)
    assert_user_error(res, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("out, needle", [("afile", "not a directory"), ("afile/sub", "not a directory")])
def test_datagen_jetclass_output_is_a_file(out, needle, tmp_path, good_out, capsys):
    before = snapshot(tmp_path)
    assert_user_error(_datagen(["jetclass", "--out", tmp_path / out, "--quiet"], capsys), needle)
    assert snapshot(tmp_path) == before


def test_datagen_unknown_command(capsys):
    assert_user_error(_datagen(["higgs"], capsys), "invalid choice")
    assert_user_error(_datagen([], capsys), "required")


TRACKML_BAD_ARGS = {  # extra arguments after "trackml --out OUT" -> needle
    "zero events": (["--events", "0"], "positive integer"),
    "zero workers": (["--events", "1", "--workers", "0"], "positive integer"),
    "negative pileup": (["--events", "1", "--pileup", "-1"], ">= 0"),
    "noise fraction 1": (["--events", "1", "--noise-fraction", "1"], "fraction in [0, 1)"),
    "missing detectors file": (["--events", "1", "--detectors", "{tmp}/none.csv"], "does not exist"),
    "detectors file not a CSV": (["--events", "1", "--detectors", "{tmp}/afile"], "missing column(s) volume_id"),
}


@pytest.mark.parametrize("case", list(TRACKML_BAD_ARGS))
def test_datagen_trackml_bad_arguments(case, tmp_path, capsys):
    args, needle = TRACKML_BAD_ARGS[case]
    (tmp_path / "afile").write_text("x\n1\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_user_error(_datagen(["trackml", "--out", tmp_path / "o", *args], capsys), needle)
    assert not (tmp_path / "o").exists()


def test_datagen_trackml_output_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    before = snapshot(tmp_path)
    assert_user_error(_datagen(["trackml", "--out", tmp_path / "afile", "--events", "1"], capsys), "not a directory")
    assert snapshot(tmp_path) == before


#: a small generated dataset: one HToBB and one ZJetsToNuNu file of the validation split, 2 jets each
GEN_ARGS = ["--classes", "HToBB,ZJetsToNuNu", "--splits", "val", "--jets-per-class", "8", "--quiet"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from partx.datagen.__main__ import main

    out = tmp_path_factory.mktemp("gen") / "JetClass"
    assert main(["jetclass", "--out", str(out), *GEN_ARGS]) == 0
    return out


@pytest.fixture
def gen_copy(generated, tmp_path):
    import shutil

    return Path(shutil.copytree(generated, tmp_path / "JetClass"))


GEN_MISMATCH = {  # a rerun that would mix files made otherwise, or an unusable record -> needle
    "other size": (lambda out: ["--jets-per-class", "12"], "not jets=3"),
    "other seed": (lambda out: ["--seed", "3"], "seed=3"),
    "other detector": (lambda out: ["--no-detector"], "detector=False"),
    "corrupt record": (lambda out: (out / "Pythia/partx_datagen.json").write_text("{bad") and [], "unreadable generation record"),
    "record not a mapping": (lambda out: (out / "Pythia/partx_datagen.json").write_text("[1, 2]") and [], "not a partx generation record"),
}


@pytest.mark.parametrize("case", list(GEN_MISMATCH))
def test_datagen_rerun_refuses_other_parameters(case, gen_copy, capsys):
    edit, needle = GEN_MISMATCH[case]
    extra = edit(gen_copy)
    before = snapshot(gen_copy)
    res = _datagen(["jetclass", "--out", gen_copy, *GEN_ARGS, *extra], capsys)
    assert_user_error(res, needle)
    assert snapshot(gen_copy) == before


@pytest.mark.parametrize("damage", ["zero_byte", "half_truncated", "not_root"])
def test_datagen_unrecorded_unreadable_file_is_refused(damage, tmp_path, good_root, capsys):
    """A file under a planned name without a generation record (older partx, a copy) that does not read;
    the planned size is the good file's 40 jets (the validation split of 160 per class), so only
    the damage can tell (a half-truncated file keeps its header: only the integrity check sees it)."""
    path = tmp_path / "o" / "Pythia" / "val_5M" / "HToBB_120.root"
    path.parent.mkdir(parents=True)
    DAMAGES[damage][0](good_root, path)
    before = snapshot(tmp_path)
    res = _datagen(["jetclass", "--out", tmp_path / "o", "--classes", "HToBB", "--splits", "val",
                    "--jets-per-class", "160", "--quiet"], capsys)
    assert_user_error(res, "HToBB_120.root", "delete it")
    assert snapshot(tmp_path) == before


def test_datagen_rerun_keeps_finished_files_and_says_so(gen_copy, capsys):
    before = snapshot(gen_copy)
    res = _datagen(["jetclass", "--out", gen_copy, *GEN_ARGS], capsys)
    assert res.returncode == 0, res.stderr
    assert "resuming: 2 of 2 files" in res.stdout and "nothing to generate" in res.stdout
    assert snapshot(gen_copy) == before


def test_datagen_damaged_recorded_file_is_generated_again(gen_copy, capsys):
    import awkward as ak

    path = gen_copy / "Pythia" / "val_5M" / "HToBB_120.root"
    good = ak.to_list(uproot.open(path)["tree"].arrays())
    BadRoot.half_truncated(path, path)
    res = _datagen(["jetclass", "--out", gen_copy, *GEN_ARGS], capsys)
    assert res.returncode == 0, res.stderr
    assert "HToBB_120.root" in res.stdout and "generating it again" in res.stdout
    assert "resuming: 1 of 2 files" in res.stdout
    assert ak.to_list(uproot.open(path)["tree"].arrays()) == good  # same seed: the same jets


@needs_readonly
def test_datagen_read_only_output(gen_copy):
    before = snapshot(gen_copy)
    res = run(python("-m", "partx.datagen", "jetclass", "--out", gen_copy, *GEN_ARGS[:4], "--jets-per-class", "12",
                     "--seed", "1", "--quiet"), readonly=[gen_copy])
    assert_user_error(res)
    assert snapshot(gen_copy) == before
    res = run(python("-m", "partx.datagen", "jetclass", "--out", gen_copy / "new", "--quiet"), readonly=[gen_copy])
    assert_user_error(res, "Read-only")
    assert snapshot(gen_copy) == before


@pytest.mark.parametrize("workers", [1, 2])
def test_datagen_interrupt_then_rerun_resumes(workers, tmp_path):
    """Ctrl-C after the first of three files: exit 130 within seconds, one line, no temporary file left
    (with 2 workers the other one was mid-file), the finished file recorded; the rerun keeps it, says so,
    and makes the others."""
    out = tmp_path / "JetClass"
    manifest = out / "Pythia" / "partx_datagen.json"
    args = python("-m", "partx.datagen", "jetclass", "--out", out, "--classes", "HToBB,ZJetsToNuNu,ZToQQ",
                  "--splits", "train", "--jets-per-class", "40", "--workers", workers, "--quiet")
    res, seconds = interrupt(args, lambda: manifest.exists())
    assert_interrupted(res, seconds)
    split = out / "Pythia" / "train_100M"
    finished = sorted(p.name for p in split.iterdir())
    assert 1 <= len(finished) < 3 and all(not n.startswith(".") for n in finished), finished  # no temporary file
    assert sorted(json.loads(manifest.read_text())) == [f"train_100M/{n}" for n in finished]
    kept = snapshot(split / finished[0])
    done = run(args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming: {len(finished)} of 3 files" in done.stdout
    assert sorted(p.name for p in split.iterdir()) == ["HToBB_000.root", "ZJetsToNuNu_000.root", "ZToQQ_000.root"]
    assert snapshot(split / finished[0]) == kept


# ---------------------------------------------------------------------------------------------------
# python -m partx.datagen validate


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_validate_damaged_file(damage, bad_root, good_out, capsys):
    folder = bad_root(damage)
    before = snapshot(good_out)
    res = _datagen(["validate", folder, "--plot", good_out / "summary.png"], capsys)
    assert_user_error(res, "HToBB_000.root", DAMAGES[damage][1])
    assert snapshot(good_out) == before


def test_validate_file_cut_after_its_last_basket(bad_root, capsys):
    """Every basket reads; only the TFile end marker (fEND) is beyond the file's end."""
    assert_user_error(_datagen(["validate", bad_root("tail_cut_after_baskets")], capsys), "truncated")


def test_validate_names_the_bad_file_among_good_ones(good_root, bad_root, tmp_path, capsys):
    import shutil

    shutil.copy(good_root, tmp_path / "HToBB_001.root")
    shutil.copy(bad_root("half_truncated") / "HToBB_000.root", tmp_path / "HToBB_002.root")
    assert_user_error(_datagen(["validate", tmp_path], capsys), "HToBB_002.root", "truncated")


VALIDATE_BAD_ARGS = {  # arguments -> needle
    "missing folder": (["{tmp}/nothing"], "does not exist"),
    "folder without ROOT files": (["{good}"], "no .root files"),
    "plot is a folder": (["{root}", "--plot", "{good}"], "is a directory"),
    "plot below a file": (["{root}", "--plot", "{tmp}/afile/s.png"], "not a directory"),
    "plot format unknown": (["{root}", "--plot", "{good}/summary.txt"], "cannot write '.txt'"),
    "no folder": ([], "required"),
}


@pytest.mark.parametrize("case", list(VALIDATE_BAD_ARGS))
def test_validate_bad_arguments(case, tmp_path, good_root, good_out, capsys):
    args, needle = VALIDATE_BAD_ARGS[case]
    before = snapshot(tmp_path)
    argv = [a.format(tmp=tmp_path, good=good_out, root=good_root) for a in args]
    assert_user_error(_datagen(["validate", *argv], capsys), needle)
    assert snapshot(tmp_path) == before


@needs_readonly
def test_validate_read_only_plot_folder(good_root, good_out):
    before = snapshot(good_out)
    res = run(python("-m", "partx.datagen", "validate", good_root, "--plot", good_out / "summary.png"), readonly=[good_out])
    assert_user_error(res, "Read-only")
    assert snapshot(good_out) == before


def test_validate_subprocess_exit_codes(good_root, bad_root):
    ok = run(python("-m", "partx.datagen", "validate", good_root))
    assert ok.returncode == 0 and "total: 40 jets in 1 files" in ok.stdout
    assert_user_error(run(python("-m", "partx.datagen", "validate", bad_root("tail_truncated"))), "truncated")


# ---------------------------------------------------------------------------------------------------
# analysis/evaluate_jets.py

NAMES = ["label_QCD", "label_Hbb", "label_Tbqq", "label_Tbl"]
LABELS = np.repeat(np.arange(4), 25)


@pytest.fixture(scope="module")
def good_pred(tmp_path_factory) -> Path:
    return prediction_file(tmp_path_factory.mktemp("pred") / "pred_good.root", LABELS, NAMES)


PRED_BAD = {  # name -> (make(good, dst), needle)
    "zero_byte": (BadRoot.zero_byte, "unreadable"),
    "half_truncated": (BadRoot.half_truncated, "unreadable"),
    "tail_truncated": (BadRoot.tail_truncated, "unreadable"),
    "nan_score": (lambda g, d: BadRoot.nonfinite(g, d, "score_label_Hbb"), "non-finite scores"),
    "inf_score": (lambda g, d: BadRoot.nonfinite(g, d, "score_label_QCD", float("inf")), "non-finite scores"),
    "missing_score": (lambda g, d: BadRoot.missing_branch(g, d, "score_label_Tbl"), "without score branches"),
    "missing_truth": (lambda g, d: BadRoot.missing_branch(g, d, "label_QCD"), "without truth branches"),
    "renamed_truth": (lambda g, d: BadRoot.renamed_branch(g, d, "label_Hbb", "label_HBB"), "label_Hbb"),
    "no_jets": (lambda g, d: prediction_file(d, LABELS[:0], NAMES), "no jets"),
    "one_class": (lambda g, d: prediction_file(d, np.zeros(30, int), NAMES), "of one class"),
    "no_true_label": (lambda g, d: BadRoot.nonfinite(g, d, "label_Hbb", 0, entry=30), "exactly one true label"),
    "other_tree": (lambda g, d: _other_tree(d), "no tree 'Events'"),
    "not_root": (lambda g, d: d.write_text("not ROOT\n") and d, "unreadable"),
}


def _other_tree(path: Path) -> Path:
    with uproot.recreate(path) as f:
        f.mktree("tree", {"x": np.float32}).extend({"x": np.zeros(3, np.float32)})
    return path


def _evaluate(argv, capsys):
    import evaluate_jets

    return call(evaluate_jets.main, argv, capsys)


@pytest.mark.parametrize("case", list(PRED_BAD))
def test_evaluate_bad_prediction_file(case, good_pred, tmp_path, good_out, capsys):
    make, needle = PRED_BAD[case]
    bad = make(good_pred, tmp_path / "pred_bad.root")
    before = snapshot(good_out)
    inputs = [bad] if case in ("no_jets", "one_class") else [good_pred, bad]  # else: a bad file among good ones
    res = _evaluate([*inputs, "--json", good_out / "m.json", "--plot", good_out / "roc.png"], capsys)
    assert_user_error(res, needle)
    assert snapshot(good_out) == before


EVALUATE_BAD_ARGS = {
    "no file matches": (["{tmp}/nothing_*.root"], "no prediction file matches"),
    "a folder as input": (["{tmp}"], "unreadable"),
    "json is a folder": (["{pred}", "--json", "{good}"], "is a directory"),
    "json below a file": (["{pred}", "--json", "{tmp}/afile/m.json"], "not a directory"),
    "plot is a folder": (["{pred}", "--plot", "{good}"], "is a directory"),
    "plot format unknown": (["{pred}", "--plot", "{good}/roc.txt"], "cannot write '.txt'"),
    "unknown option": (["{pred}", "--roc", "x.png"], "unrecognized arguments"),
    "no input": ([], "required"),
}


@pytest.mark.parametrize("case", list(EVALUATE_BAD_ARGS))
def test_evaluate_bad_arguments(case, good_pred, tmp_path, good_out, capsys):
    args, needle = EVALUATE_BAD_ARGS[case]
    before = snapshot(tmp_path)
    res = _evaluate([a.format(tmp=tmp_path, good=good_out, pred=good_pred) for a in args], capsys)
    assert_user_error(res, needle)
    assert snapshot(tmp_path) == before


def test_evaluate_same_file_twice_counts_its_jets_once(good_pred, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(good_pred.parent)
    res = _evaluate([good_pred, f"./{good_pred.name}", str(good_pred.parent / "pred_*.root")], capsys)
    assert res.returncode == 0 and f"jets {len(LABELS)} " in res.stdout, res.stdout


@needs_readonly
def test_evaluate_read_only_output_and_exit_codes(good_pred, tmp_path, good_out):
    before = snapshot(good_out)
    script = REPO / "analysis" / "evaluate_jets.py"
    res = run(python(script, good_pred, "--json", good_out / "m.json"), readonly=[good_out])
    assert_user_error(res, "Read-only")
    assert snapshot(good_out) == before
    ok = run(python(script, good_pred, "--json", tmp_path / "m.json"))
    assert ok.returncode == 0 and json.loads((tmp_path / "m.json").read_text())["n_jets"] == len(LABELS)


# ---------------------------------------------------------------------------------------------------
# analysis/benchmark.py

FAST = ["--warmup", "0", "--min-run-time", "0", "--max-seconds", "0.02", "--no-memory", "--no-progress"]


def _benchmark(argv, capsys):
    import benchmark

    return call(benchmark.main, argv, capsys)


@pytest.fixture
def no_measuring(monkeypatch):
    """A case that must stop before anything is measured fails loudly if it measures."""
    from partx.perf import timing

    def boom(*a, **k):
        raise AssertionError("measured although the run should have stopped first")

    monkeypatch.setattr(timing, "measure", boom)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    import torch

    (d / "corrupt.pt").write_bytes(b"PK\x03\x04 half a zip file")
    torch.save({"not_a_pfn_weight": torch.zeros(3)}, d / "wrong.pt")
    (d / "bad.yaml").write_text("inputs: [1, 2\n  b: : :\n")
    return d


BENCH_BAD = {  # arguments (after --models PFN --lengths 8 ...) -> needle
    "zero length": (["--lengths", "0"], ">= 1"),
    "negative length": (["--lengths", "8,-16"], ">= 1"),
    "text length": (["--lengths", "long"], "integers"),
    "zero batch": (["--batch-sizes", "0"], ">= 1"),
    "unknown model": (["--models", "PFN,Foo"], "unknown model 'Foo'"),
    "no model": (["--models", ","], "no models"),
    "unknown dtype": (["--dtypes", "fp64"], "unknown dtype"),
    "fill above 1": (["--fill", "1.5"], "--fill"),
    "fill text": (["--fill", "half"], "--fill"),
    "unknown device": (["--device", "tpu"], "unknown device"),
    "baseline not benchmarked": (["--baseline", "PN"], "baseline 'PN'"),
    "zero threads": (["--threads", "0"], "positive integer"),
    "zero flops batch": (["--flops-batch", "0"], "positive integer"),
    "negative flops batch": (["--flops-batch", "-2"], "positive integer"),
    "zero max seconds": (["--max-seconds", "0"], "--max-seconds > 0"),
    "negative warmup": (["--warmup", "-1"], "--warmup >= 0"),
    "option not KEY=VALUE": (["-o", "PFN:oops"], "not KEY=VALUE"),
    "option for another model": (["-o", "ParT:num_layers=1"], "not benchmarked"),
    "unknown model option": (["-o", "PFN:no_such=3"], "unknown option"),
    "checkpoint not NAME=PATH": (["--checkpoint", "PFN"], "NAME=PATH"),
    "missing checkpoint": (["--checkpoint", "PFN={ck}/nothing.pt"], "not found"),
    "corrupt checkpoint": (["--checkpoint", "PFN={ck}/corrupt.pt"], "cannot be read"),
    "wrong checkpoint": (["--checkpoint", "PFN={ck}/wrong.pt"], "does not load into 'PFN'"),
    "missing data config": (["--data-config", "{ck}/nothing.yaml"], "not found"),
    "malformed data config": (["--data-config", "{ck}/bad.yaml"], "cannot be read"),
    "no data files": (["--data-files", "{ck}/nothing*.root"], "matches no file"),
    "stem is a path": (["--stem", "../escaped"], "plain file name"),
    "empty stem": (["--stem", ""], "plain file name"),
    "hidden stem": (["--stem", ".hidden"], "plain file name"),
    "out is a file": (["--out", "{tmp}/afile"], "not a directory"),
    "out below a file": (["--out", "{tmp}/afile/sub"], "not a directory"),
    "unknown option": (["--iterations", "8"], "unrecognized arguments"),
}


@pytest.mark.parametrize("case", list(BENCH_BAD))
def test_benchmark_bad_arguments(case, tmp_path, good_out, bad_files, no_measuring, capsys):
    args, needle = BENCH_BAD[case]
    before = snapshot(tmp_path)
    argv = ["--models", "PFN", "--lengths", "8", "--baseline", "none", *FAST, "--out", good_out,
            *(a.format(tmp=tmp_path, ck=bad_files) for a in args)]
    res = _benchmark(argv, capsys)
    assert_user_error(res, needle)
    assert snapshot(tmp_path) == before
    assert not _staging(tmp_path, good_out.name)  # no staging folder left beside --out


@pytest.mark.parametrize("damage", ["zero_byte", "half_truncated", "renamed_branch", "inf_feature", "nan"])
def test_benchmark_bad_data_files(damage, bad_root, tmp_path, good_out, no_measuring, capsys):
    before = snapshot(tmp_path)
    argv = ["--models", "PFN", "--lengths", "8", "--baseline", "none", *FAST, "--out", good_out,
            "--data-files", str(bad_root(damage) / "*.root")]
    assert_user_error(_benchmark(argv, capsys), "--data-files")
    assert snapshot(tmp_path) == before


@needs_readonly
def test_benchmark_read_only_out(good_out):
    before = snapshot(good_out)
    res = run(python(REPO / "analysis" / "benchmark.py", "--models", "PFN", "--lengths", "8", "--baseline", "none",
                     *FAST, "--out", good_out), readonly=[good_out])
    assert_user_error(res, "Read-only")
    assert snapshot(good_out) == before


def _staging(parent: Path, name: str) -> list[Path]:
    """partx.atomic's hidden staging folders of ``parent/name``: beside it, or inside it (merge)."""
    return [p for d in (parent, parent / name) if d.is_dir() for p in d.iterdir()
            if p.name.startswith(f".{name}.") and p.name.endswith(".tmp")]


def test_benchmark_interrupt_keeps_out_then_rerun_writes_it(good_out):
    """Ctrl-C while measuring: exit 130 within seconds, --out as it was, no staging folder; the rerun
    (a benchmark is measured again from the start) writes the complete set."""
    before = snapshot(good_out)
    args = python(REPO / "analysis" / "benchmark.py", "--models", "PFN", "--lengths", "8,16,32,64,128",
                  "--batch-sizes", "1,8", "--baseline", "none", "--warmup", "0", "--min-run-time", "1",
                  "--max-seconds", "2", "--no-progress", "--threads", "1", "--out", good_out)
    res, seconds = interrupt(args, lambda: bool(_staging(good_out.parent, good_out.name)))
    assert_interrupted(res, seconds)
    assert snapshot(good_out) == before and not _staging(good_out.parent, good_out.name)
    done = run([*args[:args.index("--lengths") + 1], "8", *args[args.index("--lengths") + 2:]])
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((good_out / "benchmark.json").read_text())["rows"]
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert (good_out / "trace.json").read_text() == "good trace.json\n"  # other results in --out kept


# ---------------------------------------------------------------------------------------------------
# analysis/profile_model.py

PROFILE_BASE = ["--model", "PFN", "-o", "phi_sizes=(8,)", "-o", "f_sizes=(8,)", "--length", "8", "--batch-size", "2",
                "--iterations", "1", "--warmup", "0", "--peak-flops", "1e11", "--peak-bw", "1e10"]

PROFILE_BAD = {
    "zero length": (["--length", "0"], "positive integer"),
    "zero batch": (["--batch-size", "0"], "positive integer"),
    "zero iterations": (["--iterations", "0"], "positive integer"),
    "negative warmup": (["--warmup", "-1"], "non-negative"),
    "zero threads": (["--threads", "0"], "positive integer"),
    "negative threads": (["--threads", "-1"], "positive integer"),
    "zero top": (["--top", "0"], "positive integer"),
    "negative peak flops": (["--peak-flops", "-1"], "positive finite"),
    "zero bandwidth": (["--peak-bw", "0"], "positive finite"),
    "nan peak flops": (["--peak-flops", "nan"], "positive finite"),
    "unknown device": (["--device", "tpu"], "unknown --device"),
    "unknown device peak": (["--device-peak", "Foo"], "unknown --device-peak"),
    "unknown dtype": (["--dtype", "fp64"], "invalid choice"),
    "unknown model": (["--model", "Foo"], "unknown model"),
    "bad fill": (["--fill", "0"], "--fill"),
    "option not KEY=VALUE": (["-o", "nokv"], "not KEY=VALUE"),
    "missing checkpoint": (["--checkpoint", "{ck}/nothing.pt"], "not found"),
    "corrupt checkpoint": (["--checkpoint", "{ck}/corrupt.pt"], "cannot be read"),
    "wrong checkpoint": (["--checkpoint", "{ck}/wrong.pt"], "does not load"),
    "malformed data config": (["--data-config", "{ck}/bad.yaml"], "cannot be read"),
    "out is a file": (["--out", "{tmp}/afile"], "not a directory"),
    "no model": (["--model"], "expected one argument"),
}


def _profile(argv, capsys):
    import profile_model

    return call(profile_model.main, argv, capsys)


@pytest.mark.parametrize("case", list(PROFILE_BAD))
def test_profile_bad_arguments(case, tmp_path, good_out, bad_files, capsys):
    args, needle = PROFILE_BAD[case]
    before = snapshot(tmp_path)
    argv = [*PROFILE_BASE, "--out", good_out, *(a.format(tmp=tmp_path, ck=bad_files) for a in args)]
    assert_user_error(_profile(argv, capsys), needle)
    assert snapshot(tmp_path) == before


@needs_readonly
def test_profile_read_only_out(good_out):
    before = snapshot(good_out)
    res = run(python(REPO / "analysis" / "profile_model.py", *PROFILE_BASE, "--out", good_out), readonly=[good_out])
    assert_user_error(res, "Read-only")
    assert snapshot(good_out) == before


def test_profile_interrupt_keeps_out_then_rerun_writes_it(good_out):
    """Ctrl-C while profiling: exit 130 within seconds, no new trace.json beside the old results; the rerun
    writes every file."""
    before = snapshot(good_out)
    script = REPO / "analysis" / "profile_model.py"
    slow = list(PROFILE_BASE)
    slow[slow.index("--iterations") + 1] = "400"
    slow[slow.index("--batch-size") + 1] = "256"
    slow[slow.index("--length") + 1] = "128"
    res, seconds = interrupt(python(script, *slow, "--threads", "1", "--out", good_out),
                             lambda: bool(_staging(good_out.parent, good_out.name)))
    assert_interrupted(res, seconds)
    assert snapshot(good_out) == before and not _staging(good_out.parent, good_out.name)
    done = run(python(script, *PROFILE_BASE, "--out", good_out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((good_out / "trace.json").read_text()).get("traceEvents")
    assert (good_out / "benchmark.md").read_text() == "good benchmark.md\n"  # other results in --out kept


# ---------------------------------------------------------------------------------------------------
# analysis/training_size_study.py

N = 8  # training jets per class and file of the study data


@pytest.fixture(scope="module")
def study_data(tmp_path_factory):
    return jetclass_fixture.write_dataset(tmp_path_factory.mktemp("study") / "a", jets_per_file=N, seed=3)


def _study(argv, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("training_size_study", REPO / "analysis" / "training_size_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return call(mod.main, argv, capsys)


def _damaged_copy(data: Path, tmp: Path, damage: str) -> Path:
    """A copy of the study data (symlinks) whose HToBB training file is damaged."""
    copy = tmp / "damaged"
    for p in data.rglob("*.root"):
        dst = copy / p.relative_to(data)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if p.name == "HToBB_000.root" and p.parent.name == "train_100M":
            if damage == "tail_cut_after_baskets":
                BadRoot.tail_truncated(p, dst, nbytes=64)
            else:
                DAMAGES[damage][0](p, dst)
        else:
            dst.symlink_to(p)
    return copy


STUDY_BAD = {  # arguments -> needle ({data}: the good study data)
    "zero size": (["--data", "0={data}"], "size must be >= 1"),
    "negative size": (["--data=-5={data}"], "size must be >= 1"),
    "size not a number": (["--data", "many={data}"], "not an integer"),
    "no SIZE=DIR": (["--data", "{data}"], "SIZE=DIR"),
    "wrong size": (["--data", "16={data}"], "expected exactly 16"),
    "size given twice": (["--data", "8={data}", "--data", "8={data}"], "given twice"),
    "missing data dir": (["--data", "8={tmp}/nothing"], "does not exist"),
    "missing eval dir": (["--data", "8={data}", "--eval-data", "{tmp}/nothing"], "does not exist"),
    "unknown model": (["--data", "8={data}", "--models", "PFN,BDT"], "unknown model 'BDT'"),
    "no model": (["--data", "8={data}", "--models", ","], "no models"),
    "zero epochs": (["--data", "8={data}", "--epochs", "0"], "must be >= 1"),
    "zero batch": (["--data", "8={data}", "--batch-size", "0"], "must be >= 1"),
    "zero repeats": (["--data", "8={data}", "--repeats", "0"], "must be >= 1"),
    "unknown features": (["--data", "8={data}", "--features", "pid"], "invalid choice"),
    "unclosed quote in model opts": (["--data", "8={data}", "--model-opts", "PFN=-o k '4"], "No closing quotation"),
    "model opts for absent model": (["--data", "8={data}", "--model-opts", "PN=-o k 4"], "not in the study"),
    "unknown option": (["--data", "8={data}", "--lr", "0.1"], "unrecognized arguments"),
    "out is a file": (["--data", "8={data}", "--out", "{tmp}/afile"], "not a directory"),
    "out below a file": (["--data", "8={data}", "--out", "{tmp}/afile/sub"], "not a directory"),
    "zero-byte training file": (["--data", "8={zero_byte}"], "HToBB_000.root"),
    "renamed branch": (["--data", "8={renamed_branch}"], "part_px"),
    "half-truncated training file": (["--data", "8={half_truncated}"], "HToBB_000.root"),
    "training file cut after its baskets": (["--data", "8={tail_cut_after_baskets}"], "HToBB_000.root"),
    "corrupt finished run": (["--data", "8={data}", "--out", "{corrupt_run}"], "metrics.json"),
}


@pytest.mark.parametrize("case", [c
                                  for c in STUDY_BAD])
def test_study_bad_arguments_before_any_training(case, study_data, tmp_path, good_out, capsys, monkeypatch):
    from partx.studies import training_size as ts

    def no_training(*a, **k):
        raise AssertionError("trained although the study should have stopped first")

    monkeypatch.setattr(ts, "run_training", no_training)
    args, needle = STUDY_BAD[case]
    fmt = dict(data=study_data, tmp=tmp_path, corrupt_run=good_out)
    for damage in ("zero_byte", "renamed_branch", "half_truncated", "tail_cut_after_baskets"):
        if "{" + damage + "}" in " ".join(args):
            fmt[damage] = _damaged_copy(study_data, tmp_path, damage)
    if case == "corrupt finished run":
        (good_out / "runs" / f"PFN_n{N}").mkdir(parents=True)
        (good_out / "runs" / f"PFN_n{N}" / "metrics.json").write_text("{not json")
    before = snapshot(tmp_path)
    views = good_out / "views"  # the study's dataset views (symlinks) are rebuilt by every run
    argv = ["--eval-data", study_data, "--models", "PFN", "--epochs", "1", "--quiet", "--out", good_out,
            *(a.format(**fmt) for a in args)]
    res = _study(argv, capsys)
    assert_user_error(res, needle)
    if views.exists():
        import shutil

        shutil.rmtree(views)
    assert snapshot(tmp_path) == before


@needs_readonly
def test_study_read_only_out(study_data, good_out):
    before = snapshot(good_out)
    res = run(python(REPO / "analysis" / "training_size_study.py", "--data", f"{N}={study_data}", "--eval-data",
                     study_data, "--models", "PFN", "--out", good_out), readonly=[good_out])
    assert_user_error(res, "Read-only")
    assert snapshot(good_out) == before


def _live_processes(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies left to a container's init are not running)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after "(comm)": state, ppid, pgrp, ...
            live.append(int(stat.parent.name))
    return live


FAKE_TRAINING = """#!/bin/bash
# stands in for train_JetClass.sh: records its pid, then trains "forever" (or fails at once: FAIL=1)
[ -n "$FAIL" ] && exit 3
echo $$ > "$PIDFILE"
sleep 120 &
wait
"""


def test_study_interrupt_stops_training_then_rerun_redoes_it(study_data, tmp_path):
    """Ctrl-C during a training: the study exits 130 within seconds with one line and the training's whole
    process group is gone; the rerun removes the unfinished run, says so, and trains it again."""
    fake = tmp_path / "fake_train.sh"
    fake.write_text(FAKE_TRAINING)
    pidfile = tmp_path / "train.pid"
    out = tmp_path / "study"
    launcher = ("import runpy, sys; from pathlib import Path; import partx.studies.training_size as ts; "
                "ts.SCRIPT = Path(sys.argv[1]); sys.argv = ['training_size_study.py', *sys.argv[2:]]; "
                "runpy.run_path(str(ts.REPO / 'analysis' / 'training_size_study.py'), run_name='__main__')")
    args = python("-c", launcher, fake, "--data", f"{N}={study_data}", "--eval-data", study_data, "--models", "PFN",
                  "--epochs", "1", "--out", out)
    res, seconds = interrupt(args, pidfile.exists, env={"PIDFILE": str(pidfile)})
    assert_interrupted(res, seconds)
    group = int(pidfile.read_text())  # the training's process group (its own session)
    time.sleep(0.2)
    assert _live_processes(group) == []  # none of it is left running (its background sleep included)
    assert not (out / "runs" / f"PFN_n{N}" / "metrics.json").exists()
    again = run(args, env={"PIDFILE": str(pidfile), "FAIL": "1"})
    assert f"[redo] PFN n={N}: unfinished run" in again.stdout
    assert again.returncode == 1 and "exited 3" in again.stderr  # the (fake) training failing is exit 1
