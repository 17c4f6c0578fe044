"""analysis/training_size_study.py: dataset views, one row per (model, size), skip of finished runs, bad args."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from partx.studies import training_size as ts

sys.path.insert(0, str(Path(__file__).parent))
import jetclass_fixture  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N = 8  # jets per class and file
TINY = {"PFN": "-o phi_sizes (16,16) -o f_sizes (16,)"}  # weaver -o options: a step takes milliseconds


def _cli():
    spec = importlib.util.spec_from_file_location("training_size_study", REPO / "analysis" / "training_size_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tss")
    a = jetclass_fixture.write_dataset(root / "a", jets_per_file=N, seed=1)  # train N/class + the shared val/test
    b = jetclass_fixture.write_dataset(root / "b", jets_per_file=N, seed=2)  # N more train jets per class
    return a, b


def test_view_layout(data, tmp_path):
    a, b = data
    sd = ts.check_size_data(2 * N, [a, b])
    view = ts.build_view(tmp_path / "v", sd, a)
    train = sorted(p.name for p in (view / "Pythia" / ts.TRAIN).iterdir())
    assert len(train) == 20 and "HToBB_000.root" in train and "HToBB_001.root" in train
    for split in (ts.VAL, ts.TEST):
        link = view / "Pythia" / split
        assert link.is_symlink() and link.resolve() == (a / "Pythia" / split).resolve()
    ts.build_view(tmp_path / "v", ts.check_size_data(N, [b]), a)  # rebuilding replaces the training files
    assert len(list((tmp_path / "v" / "Pythia" / ts.TRAIN).iterdir())) == 10


def _fake_train_script(view_root: Path):
    """Stands in for train_JetClass.sh: writes weaver-style predictions for the view's test jets and
    the TensorBoard scalars weaver writes (2 epochs: epoch 1 trains n_train jets in 2 s)."""
    import numpy as np
    import uproot

    from partx.datagen import schema

    def run(cmd, cwd=None, env=None, stdout=None, stderr=None):
        assert cmd[1].endswith("train_JetClass.sh") and env["BATCH_SIZE"] and env["NUM_EPOCHS"]
        assert env["SAMPLES_PER_EPOCH"] == str(10 * int(Path(env["DATADIR_JetClass"]).name[1:]))
        prefix = Path(cmd[cmd.index("--model-prefix") + 1])
        pred = prefix.parent / "predict_output"
        pred.mkdir(parents=True)
        rng = np.random.default_rng(0)
        test_dir = Path(env["DATADIR_JetClass"]) / "Pythia" / ts.TEST
        for c, cls in enumerate(schema.CLASSES):
            n = sum(uproot.open(f)["tree"].num_entries for f in test_dir.glob(f"{cls.stem}_*.root"))
            scores = rng.dirichlet(np.ones(10), n)
            branches = {f"score_{lab}": scores[:, i] for i, lab in enumerate(schema.LABELS)}
            branches.update({lab: np.full(n, lab == cls.label) for lab in schema.LABELS})
            with uproot.recreate(pred / f"pred_{cls.stem}.root") as f:
                f["Events"] = branches
        from torch.utils.tensorboard import SummaryWriter

        comment = cmd[cmd.index("--tensorboard") + 1]
        with SummaryWriter(log_dir=str(ts.TENSORBOARD_ROOT / f"Jan01_00-00-00_host{comment}")) as tb:
            for epoch, (t_train, t_val, acc) in enumerate([(100.0, 101.0, 0.12), (103.0, 104.0, 0.25)]):
                tb.add_scalar("Acc/train (epoch)", 0.1, epoch, walltime=t_train)
                tb.add_scalar("Acc/eval (epoch)", acc, epoch, walltime=t_val)
        return subprocess.CompletedProcess(cmd, 0)

    return run


def test_study_outputs_and_skip(data, tmp_path, monkeypatch):
    """2 models x 2 sizes with train_JetClass.sh faked: one row per (model, size), finished runs skipped."""
    a, b = data
    out = tmp_path / "study"
    monkeypatch.setattr(ts, "run_training", _fake_train_script(out / "views"))
    monkeypatch.setattr(ts, "TENSORBOARD_ROOT", tmp_path / "runs")
    cfg = ts.StudyConfig(data={N: [b], 2 * N: [a, b]}, eval_dir=a, out_dir=out, models=["ParT-demo", "PFN"],
                         epochs=1, features="kin", batch_size=16)
    records = ts.run_study(cfg, quiet=True)
    assert sorted((r["model"], r["jets_per_class"]) for r in records) == [
        ("PFN", N), ("PFN", 2 * N), ("ParT-demo", N), ("ParT-demo", 2 * N)]
    part = next(r for r in records if r["model"] == "ParT-demo")
    assert part["model_options"] == ("-o num_layers 4 -o embed_dims '[64, 256, 64]' -o pair_embed_dims '[32, 32]' "
                                     "-o num_heads 4")  # the registry's ParT-demo
    for r in records:
        assert r["n_test"] == 10 * N and r["n_train"] == 10 * r["jets_per_class"]  # the one shared test set
        assert r["val_metric_per_epoch"] == [0.12, 0.25]  # from TensorBoard, not the text log
        assert r["train_jets_per_s"] == r["n_train"] / 2.0
        run = out / "runs" / f"{r['model']}_n{r['jets_per_class']}"
        assert (run / "metrics.json").is_file() and (run / "tensorboard").is_dir()
    assert not list((tmp_path / "runs").iterdir())  # weaver's TensorBoard runs moved into the run folders
    for name in ("results.csv", "results.json", "results.md", "training_size_study.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted((r["model"], int(r["jets_per_class"])) for r in rows) == sorted(
        (r["model"], r["jets_per_class"]) for r in records)
    md = (out / "results.md").read_text().strip().splitlines()
    assert len(md) == 2 + 4 and md[0].startswith("| model ") and "| ParT-demo " in md[-1]
    assert len(json.loads((out / "results.json").read_text())) == 4

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(ts, "run_training", no_training)
    again = ts.run_study(cfg, quiet=True)  # everything finished: nothing is trained
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in records]
    cfg.models = ["ParT-demo", "PFN", "PN"]  # --collect: tabulate the finished runs, train none of the missing
    assert len(ts.run_study(cfg, quiet=True, train=False)) == 4
    cfg.models = ["ParT-demo", "PFN"]
    cfg.epochs = 2  # a finished run with other settings is an error, not silently reused
    with pytest.raises(ts.StudyError, match="other settings"):
        ts.run_study(cfg, quiet=True)


def test_repeats_are_averaged_with_their_spread():
    """Repeated trainings of one (model, size) become one row: mean ± sample std, and the run count."""
    base = {"model": "PFN", "jets_per_class": 8, "n_train": 80, "epochs": 1, "n_test": 80, "rej_Hbb": 2.0,
            "rej_Tbqq": float("inf"), "rej_Tbl": 3.0, "train_wall_s": 10.0, "train_jets_per_s": 5.0}
    runs = [dict(base, accuracy=a, auc=0.5 + a / 2, repeat=k) for k, a in enumerate((0.2, 0.4, 0.6))]
    md = ts.markdown_table(runs + [dict(base, model="PN", accuracy=0.3, auc=0.6, repeat=0)])
    head, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.strip().splitlines()]
    assert len(rows) == 2 and head[-1] == "runs"
    pfn = dict(zip(head, rows[0]))
    assert pfn["accuracy"] == "0.4000 ± 0.2000" and pfn["runs"] == "3"  # mean and ddof=1 std of 0.2, 0.4, 0.6
    assert pfn["Hbb rej. @50%"] == "2.0 ± 0.0" and pfn["Tbqq rej. @50%"] == "inf"  # all-inf column stays inf
    assert dict(zip(head, rows[1]))["accuracy"] == "0.3000"


@pytest.mark.slow
def test_study_through_weaver(data, tmp_path):
    """The real thing: train_JetClass.sh + weaver, tiny PFN, 1 epoch, 2 sizes, through the CLI."""
    a, b = data
    out = tmp_path / "study"
    rc = _cli()(["--data", f"{N}={b}", "--data", f"{2 * N}={a},{b}", "--eval-data", str(a), "--models", "PFN",
                 "--model-opts", f"PFN={TINY['PFN']}", "--epochs", "1", "--batch-size", "16", "--features", "kin",
                 "--out", str(out), "--quiet"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["model"], r["jets_per_class"]) for r in rows] == [("PFN", str(N)), ("PFN", str(2 * N))]
    for r in rows:
        assert int(r["n_test"]) == 10 * N and 0 <= float(r["accuracy"]) <= 1 and float(r["train_wall_s"]) > 0
    for rec in json.loads((out / "results.json").read_text()):  # weaver's TensorBoard scalars were found
        assert len(rec["val_metric_per_epoch"]) == 1 and 0 <= rec["val_metric_per_epoch"][0] <= 1
    assert (out / "training_size_study.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--models", "ParT-demo,BDT"], "unknown model 'BDT'"),
    (["--data", "0=DATA_A"], "size must be >= 1"),
    (["--data=-5=DATA_A"], "size must be >= 1"),
    (["--data", "8=/nonexistent/dir"], "does not exist"),
    (["--data", "16=DATA_A", "--eval-data", "DATA_A"], "expected exactly 16"),
    (["--data", "8=DATA_A", "--eval-data", "/nonexistent/dir"], "does not exist"),
    (["--data", "8=DATA_A", "--eval-data", "DATA_A_TRAIN_ONLY"], "no validation/test files"),
    (["--data", "8=DATA_A", "--model-opts", "PN=-o k 4"], "not in the study"),
    (["--data", "8=DATA_A", "--epochs", "0"], "must be >= 1"),
])
def test_bad_arguments_exit_2(data, tmp_path, capsys, args, message):
    a, _ = data
    train_only = tmp_path / "train_only"
    (train_only / "Pythia").mkdir(parents=True)
    (train_only / "Pythia" / ts.TRAIN).symlink_to(a / "Pythia" / ts.TRAIN)
    args = [x.replace("DATA_A_TRAIN_ONLY", str(train_only)).replace("DATA_A", str(a)) for x in args]
    main = _cli()
    try:
        rc = main([*args, "--out", str(tmp_path / "out"), "--check"])
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
