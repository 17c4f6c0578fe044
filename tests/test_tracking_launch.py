"""./train_TrackML.sh: the shared launcher with the TrackML layout, end to end on a tiny generated set."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import assert_user_error  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHORT = {"NUM_EPOCHS": "1", "SAMPLES_PER_EPOCH": "4", "SAMPLES_PER_EPOCH_VAL": "2", "BATCH_SIZE": "2", "GPUS": "",
         "DDP_NGPUS": ""}


def train(args, env, timeout=900):
    return subprocess.run(["bash", str(REPO / "train_TrackML.sh"), *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **SHORT, **env}, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_trackml(tmp_path_factory) -> Path:
    """Six low-pileup events in TrackML's CSV format under DATADIR/raw_events (preprocessed on first use)."""
    root = tmp_path_factory.mktemp("trackml")
    res = subprocess.run([sys.executable, "-m", "partx.datagen", "trackml", "--out", str(root / "raw_events"),
                          "--events", "6", "--pileup", "1", "--seed", "3", "--quiet"],
                         cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr[-3000:]
    return root


@pytest.mark.parametrize("args, needles", [
    (["NoSuchModel"], ["invalid model 'NoSuchModel'", "MambaB"]),
    (["ParT", "full"], ["invalid model 'ParT'"]),  # a JetClass model
    (["MambaB", "7k"], ["invalid TrackML set '7k'", "full, 20k, 15k, 10k, 6k, 3k"]),
])
def test_unknown_model_or_set_is_one_line(tiny_trackml, args, needles):
    assert_user_error(train(args, {"DATADIR_TrackML": str(tiny_trackml), "DRY_RUN": "1"}), *needles)


def test_dry_run_command_and_aliases(tmp_path):
    """60k is full; the weaver command reads the set's folders and config; nothing is generated."""
    data = tmp_path / "data"
    for split in ("train", "val", "test"):
        (data / "processed" / "full" / split).mkdir(parents=True)
        (data / "processed" / "full" / split / "event000001000.root").write_bytes(b"")
    res = train(["MambaB", "60k", "-o", "size", "'M'"], {"DATADIR_TrackML": str(data), "DRY_RUN": "1"})
    assert res.returncode == 0, res.stderr
    cmd = shlex.split(res.stdout.strip().splitlines()[-1])
    opt = {a: cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a.startswith("--")}
    assert opt["--data-config"] == "data/TrackML/TrackML_full.yaml"
    assert opt["--network-config"] == "networks/example_MambaB.py" and opt["--optimizer"] == "adam"
    assert opt["--data-train"] == f"{data}/processed/full/train/*.root"
    assert opt["--predict-output"] == "pred.parquet" and opt["--model-prefix"].startswith("training/TrackML/full/MambaB/")
    i = cmd.index("size")
    assert cmd[i - 1:i + 2] == ["-o", "size", "'M'"]


def test_generated_default_is_used_only_for_the_untouched_default(tmp_path, monkeypatch):
    from partx.cli import UserError
    from partx.readers.trackml.datasets import launcher_data_dir

    monkeypatch.setenv("PARTX_TRACKML_DEFAULT_DIR", str(tmp_path / "generated"))
    empty = tmp_path / "empty"
    # the env.sh default without data: the generated set (dry run: its folder, nothing made)
    assert launcher_data_dir(str(empty), "full", str(empty), dry_run=True) == tmp_path / "generated"
    assert not (tmp_path / "generated").exists()
    # a folder the user chose: an error naming it, never a silent switch to toy data
    empty.mkdir()
    with pytest.raises(UserError, match="has no TrackML data"):
        launcher_data_dir(str(empty), "full", str(tmp_path / "default"))


def test_train_mambab_full_end_to_end(tiny_trackml, tmp_path):
    """`./train_TrackML.sh MambaB full`: raw events preprocessed on first use, trained, evaluated; the
    metrics JSON, per-hit embeddings and efficiency plots land in predict_output/ only when complete."""
    run = tmp_path / "run"
    res = train(["MambaB", "full", "--model-prefix", str(run / "net")],
                {"DATADIR_TrackML": str(tiny_trackml), "DATAOPTS": "--num-workers 0 --fetch-by-files --fetch-step 4"})
    assert res.returncode == 0, res.stderr[-4000:]
    assert (tiny_trackml / "processed" / "full" / "train").is_dir()
    out = run / "predict_output"
    assert sorted(p.name for p in out.iterdir()) == ["pred.metrics.json", "pred.parquet", "pred_eff_eta.png",
                                                       "pred_eff_pt.png"]
    metrics = json.loads((out / "pred.metrics.json").read_text())
    for key in ("accuracy@0.9", "recall@0.9", "precision@0.9", "accuracy@0.5", "accuracy@0.0"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, (key, metrics.get(key))
    assert "predictions in " in res.stdout
    import awkward as ak

    emb = ak.from_parquet(out / "pred.parquet")
    assert len(emb) >= 1 and ak.num(emb["scores"], axis=1)[0] > 0
    # a second run into the same folder is refused (issue 9's discipline applies to every dataset)
    res = train(["MambaB", "full", "--model-prefix", str(run / "net")], {"DATADIR_TrackML": str(tiny_trackml)})
    assert_user_error(res, "already holds a training")
