"""End to end through the real script: train_JetClass.sh -> weaver -> checkpoints, predictions, ONNX."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from partx import registry
from partx.metrics.predictions import load_weaver_predictions

sys.path.insert(0, str(Path(__file__).parent))
import jetclass_fixture  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_JETS = 24  # per class and file

# Tiny versions of each model (weaver -o options) so a step takes milliseconds.
TINY = {
    "ParT": ["-o", "num_layers", "1", "-o", "embed_dims", "[32,32]", "-o", "pair_embed_dims", "[16]", "-o", "num_heads", "4"],
    "PN": ["-o", "conv_params", "[(4,(16,16)),(4,(16,16))]", "-o", "fc_params", "[(16,0.1)]"],
    "PFN": ["-o", "phi_sizes", "(16,16)", "-o", "f_sizes", "(16,)"],
    "PCNN": ["-o", "conv_params", "((8,),(8,))", "-o", "fc_params", "((16,0.1),)"],
}
# Validation covers every class: weaver keeps a "best" checkpoint only if validation accuracy is > 0,
# which a one-step model predicting a single class would miss on a small, class-incomplete sample.
SHORT_RUN = {
    "NUM_EPOCHS": "1", "SAMPLES_PER_EPOCH": "64", "SAMPLES_PER_EPOCH_VAL": "160", "BATCH_SIZE": "16",
    "DATAOPTS": "--num-workers 0 --fetch-step 1 --in-memory", "GPUS": "",
}


def run_script(args: list[str], datadir: Path, extra_env: dict | None = None, script: str = "train_JetClass.sh"):
    env = {**os.environ, "DATADIR_JetClass": str(datadir), **SHORT_RUN, **(extra_env or {})}
    env.pop("DDP_NGPUS", None) if "DDP_NGPUS" not in (extra_env or {}) else None
    return subprocess.run(["bash", str(REPO / script), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def datadir(tmp_path_factory) -> Path:
    return jetclass_fixture.write_dataset(tmp_path_factory.mktemp("jetclass"), jets_per_file=N_JETS)


@pytest.fixture(scope="module")
def trained_part(datadir, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("part") / "net"
    res = run_script(["ParT", "kin", *TINY["ParT"], "--model-prefix", str(prefix)], datadir)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return prefix


def load_network(path: Path):
    """A weaver network file, imported as weaver does."""
    spec = importlib.util.spec_from_file_location(f"net_{Path(path).stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_predictions(pred_dir: Path):
    scores, labels, names = load_weaver_predictions([str(pred_dir / "pred_*.root")])
    assert scores.shape == (10 * N_JETS, 10)
    assert names[0] == "label_QCD" and len(names) == 10
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
    assert sorted(np.bincount(labels, minlength=10)) == [N_JETS] * 10


@pytest.mark.slow
@pytest.mark.parametrize("model", ["PN", "PFN", "PCNN"])
def test_train_and_predict_baselines(model, datadir, tmp_path):
    prefix = tmp_path / "net"
    res = run_script([model, "full", *TINY[model], "--model-prefix", str(prefix)], datadir)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (tmp_path / "net_best_epoch_state.pt").is_file()
    check_predictions(tmp_path / "predict_output")


@pytest.mark.slow
def test_part_trains_predicts_and_logs(trained_part):
    assert Path(f"{trained_part}_best_epoch_state.pt").is_file()
    check_predictions(trained_part.parent / "predict_output")
    logs = list((REPO / "logs").glob("JetClass_Pythia_kin_ParT_*.log"))
    assert logs, "train_JetClass.sh should write a log under logs/"


@pytest.mark.slow
def test_onnx_export_matches_torch_and_weaver_predicts_with_it(trained_part, datadir, tmp_path):
    from weaver.utils.dataset import SimpleIterDataset
    import onnxruntime as ort

    yaml = REPO / "data/JetClass/JetClass_kin.yaml"
    onnx_path = tmp_path / "part.onnx"
    cmd = [sys.executable, "-m", "weaver.train", "--data-config", str(yaml),
           "--network-config", str(registry.get("ParT").network_path), *TINY["ParT"],
           "--model-prefix", f"{trained_part}_best_epoch_state.pt", "--export-onnx", str(onnx_path)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and onnx_path.is_file(), res.stderr[-3000:]

    sess = ort.InferenceSession(str(onnx_path))
    assert {i.name for i in sess.get_inputs()} == {"pf_points", "pf_features", "pf_vectors", "pf_mask"}

    files = sorted(str(p) for p in (datadir / "Pythia/test_20M").glob("*.root"))
    ds = SimpleIterDataset({"_": files}, str(yaml), for_training=False, fetch_by_files=True, fetch_step=len(files), name="t")
    X, _, _ = next(iter(torch.utils.data.DataLoader(ds, batch_size=32, num_workers=0)))
    net = load_network(registry.get("ParT").network_path)
    from weaver.utils.data.config import DataConfig

    dc = DataConfig.load(str(yaml), load_observers=False, load_reweight_info=False)
    opts = dict(zip(TINY["ParT"][1::3], [eval(v) for v in TINY["ParT"][2::3]]))
    model, info = net.get_model(dc, for_inference=True, **opts)
    model.load_state_dict(torch.load(f"{trained_part}_best_epoch_state.pt", map_location="cpu"))
    model.eval()
    with torch.no_grad():
        ref = model(*[X[k] for k in info["input_names"]]).numpy()
    out = sess.run(None, {k: X[k].numpy() for k in info["input_names"]})[0]
    np.testing.assert_allclose(out, ref, atol=1e-4)

    # weaver's own ONNX prediction path runs on the exported graph
    pred = tmp_path / "pred.root"
    res = run_script(["ParT", "kin", "--predict", "--model-prefix", str(onnx_path), "--predict-output", str(pred)], datadir)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    check_predictions(tmp_path)


@pytest.mark.slow
def test_ddp_on_cpu_with_gloo(tmp_path_factory):
    data = jetclass_fixture.write_dataset(tmp_path_factory.mktemp("jetclass_ddp"), jets_per_file=12, files_per_class=2)
    out = tmp_path_factory.mktemp("ddp")
    res = run_script(["PFN", "kin", *TINY["PFN"], "--model-prefix", str(out / "net")], data, {"DDP_NGPUS": "2"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = res.stdout + res.stderr
    assert "gloo" in text and "Using distributed PyTorch" in text
    assert (out / "net_best_epoch_state.pt").is_file()
    scores, labels, _ = load_weaver_predictions([str(out / "predict_output/pred_*.root")])
    assert scores.shape == (10 * 2 * 12, 10)


# --- bad input: one clear message, no traceback -------------------------------------------------

def test_unknown_model(datadir):
    res = run_script(["NotAModel", "kin"], datadir)
    assert res.returncode == 2 and "invalid model 'NotAModel'" in res.stderr and "Traceback" not in res.stderr


def test_unknown_feature_set(datadir):
    res = run_script(["ParT", "everything"], datadir)
    assert res.returncode == 2 and "invalid feature set 'everything'" in res.stderr


def test_missing_dataset_says_how_to_get_data(tmp_path):
    res = run_script(["ParT", "kin"], tmp_path / "nowhere")
    assert res.returncode == 2
    assert "get_datasets.py" in res.stderr and "partx.datagen jetclass" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_branch_is_named(tmp_path):
    data = jetclass_fixture.write_dataset(tmp_path / "bad", jets_per_file=4, drop=("part_d0val",))
    res = run_script(["PFN", "full"], data)
    assert res.returncode == 2
    assert "lacks branch(es) the data config needs: part_d0val" in res.stderr and "Traceback" not in res.stderr
    # the kin feature set does not read part_d0val: the same files pass the preflight check
    from partx.preflight import check_files

    assert check_files(str(REPO / "data/JetClass/JetClass_kin.yaml"), [str(data / "Pythia/*/*.root")]).files == 30


def test_corrupt_file_is_named(tmp_path):
    from partx.preflight import PreflightError, check_files

    bad = tmp_path / "HToBB_000.root"
    bad.write_bytes(b"not a root file")
    with pytest.raises(PreflightError, match="HToBB_000.root: not a readable ROOT file"):
        check_files(str(REPO / "data/JetClass/JetClass_kin.yaml"), [str(bad)])


def test_bad_ddp_setting(datadir):
    res = run_script(["PFN", "kin"], datadir, {"DDP_NGPUS": "two"})
    assert res.returncode == 2 and "DDP_NGPUS must be a positive integer" in res.stderr


@pytest.mark.parametrize("knob, value, message", [
    ("BATCH_SIZE", "0", "BATCH_SIZE must be a positive integer, got '0'"),
    ("NUM_EPOCHS", "-1", "NUM_EPOCHS must be a positive integer, got '-1'"),
    ("SAMPLES_PER_EPOCH", "-5", "SAMPLES_PER_EPOCH must be a positive integer, got '-5'"),
    ("SAMPLES_PER_EPOCH_VAL", "many", "SAMPLES_PER_EPOCH_VAL must be a positive integer"),
    ("DDP_NGPUS", "3", "DDP_NGPUS=3 needs at least 3 training files per class"),
    ("GPUS", "zero", "GPUS must be comma-separated device ids"),
    ("DATAOPTS", "--num-workers '0", "DATAOPTS: No closing quotation"),
])
def test_bad_knob_is_one_line_before_weaver(datadir, knob, value, message):
    res = run_script(["PFN", "kin"], datadir, {knob: value})
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("ERROR: ")
    assert "weaver.train" not in res.stderr and "Traceback" not in res.stderr


def test_weaver_command_from_registry_and_layout(datadir):
    """DRY_RUN prints the weaver command: the official script's semantics, defaults from the registry."""
    import shlex

    res = run_script(["ParT-plain", "kinpid", "-o", "num_layers", "1"], datadir,
                     {"DRY_RUN": "1", "BATCH_SIZE": "", "NUM_EPOCHS": "", "COMMENT": "_x"})
    assert res.returncode == 0, res.stderr
    cmd = shlex.split(res.stdout.strip().splitlines()[-1])
    assert cmd[1:3] == ["-m", "partx.weaver_run"]  # weaver.train with atomic saves + NaN-loss stop
    opt = {a: cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a.startswith("--")}
    assert opt["--network-config"] == "networks/example_ParticleTransformer.py"
    assert opt["--batch-size"] == "512" and float(opt["--start-lr"]) == 1e-3 and opt["--num-epochs"] == "50"
    assert opt["--data-config"] == "data/JetClass/JetClass_kinpid.yaml" and opt["--optimizer"] == "ranger"
    # {auto} is resolved before launch (weaver's own naming) so the run folder is known up front
    run = re.fullmatch(r"training/JetClass/Pythia/kinpid/ParT-plain/(\d{8}-\d{6}_example_ParticleTransformer_[0-9a-f]{32}_ranger_lr0\.001_batch512)_x/net",
                       opt["--model-prefix"])
    assert run, opt["--model-prefix"]
    assert opt["--log"] == f"logs/JetClass_Pythia_kinpid_ParT-plain_{run.group(1)}_x.log"
    assert opt["--gpus"] == "" and "--use-amp" not in cmd  # CPU
    i = cmd.index("--data-train")
    assert cmd[i + 1] == f"HToBB:{datadir}/Pythia/train_100M/HToBB_*.root" and len(cmd[i + 1:cmd.index("--data-val")]) == 10
    # registry options first, the user's weaver args last (weaver keeps the last -o of a key)
    j = cmd.index("pair_embed_dims")
    k = len(cmd) - 1 - cmd[::-1].index("num_layers")
    assert cmd[j - 1:j + 2] == ["-o", "pair_embed_dims", "None"] and cmd[k - 1:k + 2] == ["-o", "num_layers", "1"]
    assert k > max(i for i, a in enumerate(cmd) if a == "-o" and cmd[i + 1] != "num_layers")


def test_preflight_reads_parquet(tmp_path):
    import awkward as ak

    from partx.preflight import PreflightError, check_files, required_branches

    yaml = str(REPO / "data/JetClass/JetClass_kin.yaml")
    branches, _ = required_branches(yaml)
    good = tmp_path / "good.parquet"
    ak.to_parquet(ak.Array({b: [[1.0, 2.0], [3.0]] for b in branches}), good)
    assert check_files(yaml, [str(good)]).files == 1
    dropped = sorted(branches)[0]
    bad = tmp_path / "bad.parquet"
    ak.to_parquet(ak.Array({b: [[1.0]] for b in branches if b != dropped}), bad)
    with pytest.raises(PreflightError, match=f"lacks column\\(s\\) the data config needs: {dropped}"):
        check_files(yaml, [str(bad)])
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(PreflightError, match="junk.parquet: not a readable parquet file"):
        check_files(yaml, [str(tmp_path / "junk.parquet")])
