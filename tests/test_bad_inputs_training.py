"""Bad inputs for training: partx.preflight and ./train_JetClass.sh (issue 9).

Each case asserts the exit status, one ``ERROR:`` line and no traceback for user errors, and that a
good output that existed before is byte-identical afterwards. The preflight cases run in-process
(``bad_inputs.call``); the training cases run the script as a user would.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import jetclass_fixture  # noqa: E402
from bad_inputs import BadRoot, assert_user_error, call, interrupt, readonly_supported, run, snapshot  # noqa: E402

from partx import preflight  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KIN = str(REPO / "data/JetClass/JetClass_kin.yaml")
SHORT_RUN = {
    "NUM_EPOCHS": "1", "SAMPLES_PER_EPOCH": "64", "SAMPLES_PER_EPOCH_VAL": "64", "BATCH_SIZE": "16",
    "DATAOPTS": "--num-workers 0 --fetch-step 1 --in-memory", "GPUS": "", "DDP_NGPUS": "",
}
TINY_PFN = ["-o", "phi_sizes", "(16,16)", "-o", "f_sizes", "(16,)"]


@pytest.fixture(scope="module")
def datadir(tmp_path_factory) -> Path:
    return jetclass_fixture.write_dataset(tmp_path_factory.mktemp("jetclass"), jets_per_file=16)


@pytest.fixture()
def good_file(datadir) -> Path:
    return datadir / "Pythia/train_100M/HToBB_000.root"


def train(args: list[str], datadir: Path, env: dict | None = None, readonly: list[Path] = ()):
    return run(["bash", str(REPO / "train_JetClass.sh"), *args], readonly=readonly,
               env={"DATADIR_JetClass": str(datadir), **SHORT_RUN, **(env or {})})


# ---------------------------------------------------------------------------------------------------
# partx.preflight: truncation, branches, values, config


def _patch_fend(path: Path, new_end: int) -> None:
    """Rewrite the TFile header's fEND (bytes 11.., 4 or 8 bytes by fVersion; ROOT TFile::WriteHeader)."""
    data = bytearray(path.read_bytes())
    version = struct.unpack(">i", data[4:8])[0]
    if version >= 1000000:
        data[12:20] = struct.pack(">q", new_end)
    else:
        data[12:16] = struct.pack(">i", new_end)
    path.write_bytes(bytes(data))


def _preflight(capsys, *args):
    return call(preflight.main, ["--data-config", KIN, *map(str, args)], capsys)


@pytest.mark.parametrize("damage, needle", [
    (BadRoot.zero_byte, "not a readable ROOT file"),
    (BadRoot.half_truncated, "HToBB_bad.root"),
    (BadRoot.tail_truncated, "truncated ROOT file"),
])
def test_preflight_truncated(tmp_path, good_file, capsys, damage, needle):
    bad = damage(good_file, tmp_path / "HToBB_bad.root")
    assert_user_error(_preflight(capsys, bad), "HToBB_bad.root", needle)


def test_preflight_baskets_beyond_a_consistent_header(tmp_path, good_file, capsys):
    """A copy cut short whose header was rewritten to match: only the basket positions tell."""
    bad = BadRoot.tail_truncated(good_file, tmp_path / "HToBB_cut.root", nbytes=4000)
    _patch_fend(bad, bad.stat().st_size)
    assert_user_error(_preflight(capsys, bad), "HToBB_cut.root", "has data beyond byte")


def test_preflight_renamed_branch(tmp_path, good_file, capsys):
    bad = BadRoot.renamed_branch(good_file, tmp_path / "renamed.root", "part_deta", "part_Deta")
    assert_user_error(_preflight(capsys, bad), "renamed.root", "lacks branch(es)", "part_deta")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("branch", ["part_px", "jet_pt"])
def test_preflight_nonfinite(tmp_path, good_file, capsys, branch, value):
    bad = BadRoot.nonfinite(good_file, tmp_path / "nonfinite.root", branch, value, entry=5)
    assert_user_error(_preflight(capsys, bad), "nonfinite.root", f"'{branch}'", "non-finite", "entry 5")


def test_preflight_sample_mode_reads_first_and_last_basket(tmp_path, good_file, capsys):
    bad = BadRoot.nonfinite(good_file, tmp_path / "nonfinite.root", "part_px", float("nan"), entry=15)
    assert_user_error(call(preflight.main, ["--data-config", KIN, "--mode", "sample", str(bad)], capsys), "non-finite")


def test_preflight_empty_jet_is_a_warning(tmp_path, good_file, capsys):
    odd = BadRoot.empty_jet(good_file, tmp_path / "empty.root", entry=2)
    res = _preflight(capsys, odd)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "1 entry with no particles" in warnings[0] and "entry 2" in warnings[0]
    assert "preflight: 1 file(s)" in res.stdout and "values finite (every basket read; " in res.stdout


def test_preflight_bad_config_and_mode(tmp_path, good_file, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("inputs:\n  pf_features: [unclosed\n")
    assert_user_error(call(preflight.main, ["--data-config", str(broken), str(good_file)], capsys),
                      "broken.yaml", "not valid YAML")
    assert_user_error(call(preflight.main, ["--data-config", KIN, "--mode", "quick", str(good_file)], capsys), "mode")
    assert_user_error(_preflight(capsys, tmp_path / "nothing_*.root"), "no input file matches")


def test_preflight_auto_mode_threshold(good_file, monkeypatch):
    monkeypatch.setenv("PREFLIGHT_FULL_BYTES", "10")
    assert preflight.check_files(KIN, [str(good_file)]).mode == "sample"
    monkeypatch.setenv("PREFLIGHT_FULL_BYTES", str(1 << 30))
    assert preflight.check_files(KIN, [str(good_file)]).mode == "full"


def test_every_jet_model_is_finite_on_an_empty_jet():
    """A zero-particle jet (warned about, not refused) must give finite outputs in every registered model,
    and must not change the outputs of the other jets in the batch."""
    import logging

    import torch
    from weaver.utils.data.config import DataConfig

    from partx import registry
    from partx.perf.models import build_model, resolve_model

    logging.getLogger("weaver").setLevel(logging.WARNING)
    config = DataConfig.load(str(REPO / "data/JetClass/JetClass_full.yaml"))
    torch.manual_seed(0)
    n, length = 3, 32  # >= Linformer's projection length k
    mask = torch.ones(n, 1, length)
    mask[0] = 0  # jet 0 has no particles: weaver gives it zero features and a zero mask
    mask[1, :, 10:] = 0
    inputs = (torch.randn(n, 2, length) * mask, torch.randn(n, 17, length) * mask,
              (torch.rand(n, 4, length) + 1.0) * mask, mask)
    for name in registry.names("jetclass"):
        model = build_model(resolve_model(name), config, length)
        with torch.no_grad():
            out = model(*inputs)
            alone = model(*(t[1:] for t in inputs))
        assert out.shape == (n, 10) and torch.isfinite(out).all(), (name, out)
        torch.testing.assert_close(out[1:], alone, rtol=1e-4, atol=1e-5, msg=name)


# ---------------------------------------------------------------------------------------------------
# ./train_JetClass.sh


@pytest.fixture(scope="module")
def good_run(datadir, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("good_run") / "run" / "net"
    res = train(["PFN", "kin", *TINY_PFN, "--model-prefix", str(prefix)], datadir)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "predictions in " in res.stdout and len(list((prefix.parent / "predict_output").glob("pred_*.root"))) == 10
    return prefix.parent


def test_training_refuses_an_existing_run(good_run, datadir):
    before = snapshot(good_run)
    res = train(["PFN", "kin", *TINY_PFN, "--model-prefix", str(good_run / "net")], datadir)
    assert_user_error(res, str(good_run), "already holds a training", "RESUME=", "--force")
    assert snapshot(good_run) == before


def test_prediction_never_replaces_good_predictions(good_run, datadir):
    before = snapshot(good_run)
    res = train(["PFN", "kin", *TINY_PFN, "--predict", "--model-prefix", str(good_run / "net_best_epoch_state.pt")],
                datadir)
    assert_user_error(res, "already exist", "--predict-output")
    assert snapshot(good_run) == before
    # a new folder is fine, and appears complete
    res = train(["PFN", "kin", *TINY_PFN, "--predict", "--model-prefix", str(good_run / "net_best_epoch_state.pt"),
                 "--predict-output", str(good_run / "again" / "pred.root")], datadir)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(list((good_run / "again").glob("pred_*.root"))) == 10
    assert not list((good_run / "again").glob(".partial-*"))
    assert {k: v for k, v in snapshot(good_run).items() if not k.startswith("again/")} == before


@pytest.mark.parametrize("args, needles", [
    (["PFN", "kin", "--no-such-option"], ["weaver argument error", "--no-such-option"]),
    (["PFN", "kin", "--num-epochs", "two"], ["weaver argument error", "num-epochs"]),
    (["NoSuchModel", "kin"], ["NoSuchModel"]),
    (["PFN", "kinematics"], ["invalid feature set 'kinematics'"]),
])
def test_bad_arguments_are_one_line(datadir, args, needles):
    assert_user_error(train(args, datadir, {"DRY_RUN": "1"}), *needles)


def test_output_path_that_is_a_file(datadir, tmp_path):
    (tmp_path / "occupied").write_text("a file")
    res = train(["PFN", "kin", *TINY_PFN, "--model-prefix", str(tmp_path / "occupied" / "run" / "net")], datadir)
    assert_user_error(res, "is a file")
    assert (tmp_path / "occupied").read_text() == "a file"


@pytest.mark.skipif(not readonly_supported(), reason="no private mount namespaces (unshare -rm) on this machine")
def test_read_only_output_folder(datadir, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    res = train(["PFN", "kin", *TINY_PFN, "--model-prefix", str(out / "run" / "net")], datadir, readonly=[out])
    assert_user_error(res, "not writable")
    assert not any(out.iterdir())


def test_corrupt_and_nonfinite_data_stop_before_weaver(datadir, tmp_path):
    data = jetclass_fixture.write_dataset(tmp_path / "data", jets_per_file=16)
    target = data / "Pythia/train_100M/ZToQQ_000.root"
    BadRoot.nonfinite(target, tmp_path / "nan.root", "part_px", float("nan"), entry=7)
    os.replace(tmp_path / "nan.root", target)
    res = train(["PFN", "kin", *TINY_PFN, "--model-prefix", str(tmp_path / "run/net")], data)
    assert_user_error(res, "ZToQQ_000.root", "'part_px'", "non-finite")
    assert not (tmp_path / "run").exists()  # nothing written before the checks
    BadRoot.half_truncated(data / "Pythia/test_20M/TTBar_000.root", target)
    res = train(["PFN", "kin", *TINY_PFN, "--model-prefix", str(tmp_path / "run/net")], data)
    assert_user_error(res, "ZToQQ_000.root")


def test_non_finite_loss_stops_training(tmp_path):
    """inf in px (preflight skipped) makes the loss non-finite: one line, exit 3, no NaN checkpoint."""
    data = jetclass_fixture.write_dataset(tmp_path / "data", jets_per_file=16)
    for f in (data / "Pythia/train_100M").glob("*.root"):
        BadRoot.nonfinite(f, tmp_path / "x.root", "part_px", float("inf"), entry=3)
        os.replace(tmp_path / "x.root", f)
    res = train(["ParT", "kin", "-o", "num_layers", "1", "-o", "embed_dims", "[16,16]", "-o", "pair_embed_dims",
                 "[8]", "-o", "num_heads", "2", "--model-prefix", str(tmp_path / "run/net")], data,
                {"SKIP_PREFLIGHT": "1"})
    assert res.returncode == 3, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "training loss became" in errors[0]
    assert not list((tmp_path / "run").glob("*.pt"))
    assert not (tmp_path / "run/predict_output").exists()


@pytest.mark.slow
def test_ctrl_c_then_resume(datadir, tmp_path):
    """Ctrl-C after an epoch: exit 130 within seconds, one line saying how to resume, no partial
    predictions; RESUME=<run> continues from that epoch's checkpoint and finishes."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATADIR_JetClass": str(datadir), **SHORT_RUN, "NUM_EPOCHS": "40"}
    cmd = ["bash", str(REPO / "train_JetClass.sh"), "PFN", "kin", *TINY_PFN, "--model-prefix", str(run_dir / "net")]
    res, seconds = interrupt(cmd, lambda: (run_dir / "net_epoch-1_state.pt").exists(), env=env,
                             start_timeout=300, stop_timeout=30)
    assert res.returncode == 130, res.stderr[-3000:]
    assert seconds < 20 and "Traceback" not in res.stderr
    line = [x for x in res.stderr.splitlines() if x.startswith("interrupted")]
    assert len(line) == 1 and f"RESUME={run_dir}" in line[0], res.stderr[-2000:]
    saved = int(re.search(r"epochs 0-(\d+) are saved", line[0]).group(1))
    assert saved >= 1
    assert not list(run_dir.glob("predict_output/*")) and not list(run_dir.glob(".*.tmp*"))
    assert json.loads((run_dir / "partx_launch.json").read_text())["script"] == "train_JetClass.sh"

    res = run(["bash", str(REPO / "train_JetClass.sh")], env={"DATADIR_JetClass": str(datadir), **SHORT_RUN,
                                                              "RESUME": str(run_dir), "NUM_EPOCHS": str(saved + 2)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resuming {run_dir} from epoch {saved}" in res.stdout
    assert (run_dir / f"net_epoch-{saved + 1}_state.pt").exists()
    assert not (run_dir / f"net_epoch-{saved + 2}_state.pt").exists()
    assert len(list((run_dir / "predict_output").glob("pred_*.root"))) == 10
    # resuming a finished run, or something that is not a run, is one line
    res = run(["bash", str(REPO / "train_JetClass.sh")], env={"DATADIR_JetClass": str(datadir), **SHORT_RUN,
                                                              "RESUME": str(run_dir), "NUM_EPOCHS": str(saved + 2)})
    assert_user_error(res, "all", "epochs are done")
    res = run(["bash", str(REPO / "train_JetClass.sh")], env={**SHORT_RUN, "RESUME": str(tmp_path)})
    assert_user_error(res, "partx_launch.json")


def test_missing_best_checkpoint_falls_back_to_the_last_epoch(tmp_path, capsys):
    """weaver saves a "best" epoch only when validation beats 0; a run whose metric stays 0 (or NaN)
    would die in its test step. partx.weaver_run's torch.load stands in the last epoch, with a warning."""
    import torch

    from partx.weaver_run import _best_or_last_epoch

    load = _best_or_last_epoch(torch.load)
    for epoch in (0, 1):
        torch.save({"w": torch.tensor([float(epoch)])}, tmp_path / f"net_epoch-{epoch}_state.pt")
    state = load(str(tmp_path / "net_best_epoch_state.pt"))
    assert state["w"].item() == 1.0 and (tmp_path / "net_best_epoch_state.pt").is_file()
    assert "using the last epoch (1)" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):  # nothing to fall back on: weaver's own error stands
        load(str(tmp_path / "other_best_epoch_state.pt"))
