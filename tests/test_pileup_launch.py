"""./train_Pileup.sh: the shared launcher with the Pileup layout; end to end on tiny contract-format files."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pileup_tiny  # noqa: E402
from bad_inputs import assert_user_error  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHORT = {"NUM_EPOCHS": "1", "SAMPLES_PER_EPOCH": "4", "SAMPLES_PER_EPOCH_VAL": "2", "BATCH_SIZE": "2", "GPUS": "",
         "DDP_NGPUS": "", "DATAOPTS": "--num-workers 0 --fetch-by-files --fetch-step 1"}


def train(args, env, timeout=600):
    return subprocess.run(["bash", str(REPO / "train_Pileup.sh"), *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **SHORT, "PYTHONPATH": str(REPO), **env}, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_pileup(tmp_path_factory) -> Path:
    return pileup_tiny.write_set(tmp_path_factory.mktemp("pileup"))


@pytest.mark.parametrize("args, needles", [
    (["NoSuchModel"], ["invalid model 'NoSuchModel'", "HEPT Mamba MambaA MambaB"]),
    (["ParT"], ["invalid model 'ParT'"]),  # a JetClass model
    (["MambaB", "full"], ["invalid Pileup set 'full'", "processed"]),
])
def test_unknown_model_or_set_is_one_line(tiny_pileup, args, needles):
    assert_user_error(train(args, {"DATADIR_Pileup": str(tiny_pileup), "DRY_RUN": "1"}), *needles)


def test_dry_run_command(tiny_pileup):
    """The pileup entry of MambaB (not TrackML's), weaver options right after MODEL, the Pileup config."""
    res = train(["MambaB", "--num-epochs", "3"], {"DATADIR_Pileup": str(tiny_pileup), "DRY_RUN": "1"})
    assert res.returncode == 0, res.stderr
    cmd = shlex.split(res.stdout.strip().splitlines()[-1])
    opt = {a: cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a.startswith("--")}
    assert opt["--network-config"] == "networks/example_MambaBPileup.py" and opt["--optimizer"] == "adam"
    assert opt["--data-config"] == "data/Pileup/Pileup_processed.yaml"
    assert opt["--data-train"] == f"{tiny_pileup}/processed/train/*.root"
    assert opt["--predict-output"] == "pred.parquet" and opt["--model-prefix"].startswith("training/Pileup/processed/MambaB/")
    epochs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--num-epochs"]
    assert epochs[-1] == "3"  # the user's weaver option comes last and wins (argparse keeps the last)


@pytest.mark.skipif(importlib.util.find_spec("partx.readers") is not None
                    and importlib.util.find_spec("partx.readers.pileup") is not None,
                    reason="the pileup reader is installed: data are made on demand")
def test_no_reader_and_no_data_is_one_line(tmp_path):
    assert_user_error(train(["HEPT"], {"DATADIR_Pileup": str(tmp_path / "none"), "DRY_RUN": "1"}),
                      "partx.readers.pileup.datasets:launcher_data_dir", "not available")


def untrained_roc_auc(files: list[str], **overrides) -> float:
    """Pooled ROC AUC of a freshly initialised Mamba-b on the test files: the run's model before training (same
    overrides, same seed: ``-o seed 0`` seeds torch before weaver builds the model)."""
    import torch
    import uproot

    from partx.metrics.pileup import particle_metrics
    from partx.models.pileup import build_pileup_model
    from partx.train.pileup import FEATURES

    torch.manual_seed(0)
    net, events = build_pileup_model("mamba_b", "S", **overrides).eval(), []
    for path in files:
        for e in uproot.open(path)["Events"].arrays():
            feats = torch.tensor(np.stack([np.asarray(e[f"part_{k}"]) for k in FEATURES], 1), dtype=torch.float32)[None]
            mask = torch.ones(feats.shape[:2], dtype=torch.bool)
            with torch.no_grad():
                logit = net(feats, torch.tensor(np.asarray(e.part_pid_class))[None], feats[..., [0, 1, 0, 1]], mask)[0]
            events.append(dict(prob=torch.sigmoid(logit).numpy(), is_lv=np.asarray(e.part_is_lv),
                               is_scored=np.asarray(e.part_is_scored) > 0))
    return particle_metrics(events)["roc_auc"]


@pytest.mark.slow
def test_train_mambab_end_to_end(tiny_pileup, tmp_path):
    """`./train_Pileup.sh MambaB`: trains, evaluates, writes the metrics JSON, jet plot and per-particle
    probabilities only when complete, and beats the untrained model's ROC AUC."""
    run = tmp_path / "run"
    small = {"size": "S", "h_dim": 16, "n_layers": 2, "head_hidden": 32, "seed": 0}  # seed: the untrained twin below
    opts = [a for k, v in small.items() for a in ("-o", k, repr(v))]
    res = train(["MambaB", *opts, "--model-prefix", str(run / "net"), "--start-lr", "3e-3"],
                {"DATADIR_Pileup": str(tiny_pileup), "NUM_EPOCHS": "5", "SAMPLES_PER_EPOCH": "12"})
    assert res.returncode == 0, res.stderr[-4000:]
    out = run / "predict_output"
    assert sorted(p.name for p in out.iterdir()) == ["pred.metrics.json", "pred.parquet", "pred_jets.png"]
    metrics = json.loads((out / "pred.metrics.json").read_text())
    for key in ("accuracy", "roc_auc", "average_precision", "roc_auc_event_mean", "average_precision_event_mean"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert "PUPPI-like" in res.stdout and set(metrics["jets"]["methods"]) == {"none", "chs", "puppi", "model"}
    untrained = untrained_roc_auc(sorted(glob.glob(f"{tiny_pileup}/processed/test/*.root")),
                                  **{k: v for k, v in small.items() if k not in ("size", "seed")})
    assert metrics["roc_auc"] > untrained + 0.1 and metrics["roc_auc"] > 0.7, (metrics["roc_auc"], untrained)
    import awkward as ak

    probs = ak.from_parquet(out / "pred.parquet")["scores"]
    assert len(probs) == 4 and ak.num(probs, axis=1)[0] == 280
    print(f"ROC AUC trained {metrics['roc_auc']:.4f} vs untrained {untrained:.4f}; AP {metrics['average_precision']:.4f}")

    # analysis/pileup_jets.py re-scores the predictions with the test files: the test pass's numbers again
    res = subprocess.run([sys.executable, str(REPO / "analysis/pileup_jets.py"), "--pred", str(out / "pred.parquet"), "--data",
                          f"{tiny_pileup}/processed/test/*.root", "--out", str(tmp_path / "rescored")], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    again = json.loads((tmp_path / "rescored" / "pred.metrics.json").read_text())
    assert again["roc_auc"] == pytest.approx(metrics["roc_auc"], abs=1e-6)
    assert again["jets"]["methods"]["model"] == metrics["jets"]["methods"]["model"]
    res = subprocess.run([sys.executable, str(REPO / "analysis/pileup_jets.py"), "--pred", str(out / "pred.parquet"), "--data",
                          str(tmp_path / "none/*.root"), "--out", str(tmp_path / "x")], capture_output=True, text=True, cwd=REPO)
    assert_user_error(res, "--data: no file matches")


def test_vtx_set_adds_the_charged_vertex_association(tiny_pileup, tmp_path):
    """`./train_Pileup.sh MODEL vtx`: same files, HEPT's 7 features + (charged & LV, charged & pileup), 0 for
    every neutral (their truth never reaches the inputs)."""
    import shutil

    import torch
    import uproot
    from weaver.utils.dataset import SimpleIterDataset

    res = train(["HEPT", "vtx"], {"DATADIR_Pileup": str(tiny_pileup), "DRY_RUN": "1"})
    assert res.returncode == 0, res.stderr
    cmd = shlex.split(res.stdout.strip().splitlines()[-1])
    opt = {a: cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a.startswith("--")}
    assert opt["--data-config"] == "data/Pileup/Pileup_vtx.yaml" and opt["--data-test"] == f"{tiny_pileup}/processed/test/*.root"

    cfg = tmp_path / "Pileup_vtx.yaml"  # weaver writes a .auto.yaml beside the config: keep it out of the repo
    shutil.copy(REPO / "data/Pileup/Pileup_vtx.yaml", cfg)
    files = sorted(glob.glob(f"{tiny_pileup}/processed/test/*.root"))
    ds = SimpleIterDataset({"_": files}, str(cfg), for_training=False, fetch_by_files=True, fetch_step=1, name="test")
    X, _, Z = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, num_workers=0)))
    feats, n = X["part_features"][0].numpy(), int(X["part_mask"].sum())
    assert feats.shape[0] == 9
    row = uproot.open(files[0])["Events"].arrays(library="np")
    i = list(row["event_id"]).index(int(Z["event_id"][0]))
    charged, lv = row["part_charge"][i] != 0, row["part_is_lv"][i] > 0.5
    np.testing.assert_array_equal(feats[7, :n], (charged & lv).astype(np.float32))
    np.testing.assert_array_equal(feats[8, :n], (charged & ~lv).astype(np.float32))
    assert (charged & lv).any() and (charged & ~lv).any() and (~charged & lv).any()  # a case that shows a leak
    np.testing.assert_array_equal(feats[:7, :n], np.stack([row[f"part_{k}"][i] for k in ("eta", "phi", "px", "py", "pt", "e", "rapidity")]))
