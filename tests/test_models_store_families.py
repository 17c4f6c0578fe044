"""models/ beyond jets: the tracking and pileup card families.

Every committed tracking checkpoint loads through its card and reproduces its check metrics on the check
event, regenerated here (one generated TrackML event at mu = 40, ~30 CPU-s; then 20 sectors per S model);
a tracking card whose network or options do not fit its weights is named; a tiny randomly initialised pileup
model, saved with its card in a temporary folder, is scored through the card exactly as the weaver test hook
scores the same events, and a card whose check metrics its weights do not reproduce is caught.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from partx.models_store import CardError, load, read_card
from partx.models_store.card import sha256sum, write_card
from partx.models_store.families import check_card, family, headline
from partx.perf.harness import load_data_config

sys.path.insert(0, str(Path(__file__).parent))
import pileup_tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
CARDS = sorted((REPO / "models").glob("*.yaml"))
TRACKING = [p for p in CARDS if (yaml.safe_load(p.read_text()) or {}).get("family") == "tracking"]
PILEUP = [p for p in CARDS if (yaml.safe_load(p.read_text()) or {}).get("family") == "pileup"]


# ----------------------------------------------------------------- tracking: committed checkpoints
@pytest.fixture(scope="module")
def trackml_check(tmp_path_factory):
    """The check event of the tracking cards (all cards name the same commands; checked below)."""
    from partx.models_store.recipes_tracking import CHECK_FILES, check_commands

    out = tmp_path_factory.mktemp("trackml_check")
    for cmd in check_commands(str(out)):
        subprocess.run([sys.executable, *cmd.split()[1:]], check=True, cwd=REPO, capture_output=True)
    return str(out / CHECK_FILES)


def test_tracking_checkpoints_are_committed():
    assert {read_card(p).get("model") for p in TRACKING} == {"HEPT", "Mamba", "MambaA", "MambaB"}


@pytest.mark.slow
@pytest.mark.parametrize("card_path", TRACKING, ids=lambda p: p.stem)
def test_committed_tracking_checkpoint_reproduces_its_card(card_path, trackml_check):
    from partx.models_store.recipes_tracking import check_commands

    model, card = load(f"models/{card_path.stem}")  # by name, sha256 checked, strict load
    assert family(card) == "tracking" and card.get("weights.sha256") == sha256sum(card.weights_path)
    assert card.get("check.commands") == check_commands("DIR")
    got, bad = check_card(card, model, load_data_config(str(REPO / card.data_config)), trackml_check)
    assert not bad, bad
    assert got["n_events"] == card.data["check"]["metrics"]["n_events"] == 20
    # the check event is one of the card's three test events: its accuracy is not far from the test-set one
    assert abs(got["accuracy@0.9"] - card.data["metrics"]["accuracy@0.9"]) < 0.1
    assert "accuracy@0.9" in headline(card)


def test_tracking_recipes_train_as_the_comparison_ran_and_adopt_only_matching_runs(tmp_path):
    import json

    from partx.cli import UserError
    from partx.models_store.build_tracking import adopt, train_command
    from partx.models_store.recipes_tracking import RECIPES

    recipe = RECIPES["MambaB-S_gen-mu40_3k"]
    assert train_command(recipe, "R")[:7] == ["./train_TrackML.sh", "MambaB", "3k", "-o", "seed", "1", "-o"]
    assert train_command(recipe, "R")[7:9] == ["size", "'S'"]  # as analysis/tracking_compare.py passes it
    run = tmp_path / "runs" / "MambaB_seed1"  # analysis/tracking_compare.py's layout: OUT/runs/<model>_seed<seed>
    run.mkdir(parents=True)
    torch.save({}, run / "net_best_epoch_state.pt")
    settings = dict(set="3k", epochs=2, samples_per_epoch=160, samples_per_epoch_val=20, batch_size=4, size="S", extra=[],
                    datadir="D")
    (run / "record.json").write_text(json.dumps(dict(model="MambaB", seed=1, settings=settings, wall_s=1.0, metrics={})))
    (run / "stdout.log").write_text(f"bash /some/where/train_TrackML.sh MambaB 3k --model-prefix {run}/net\n")
    record = adopt(recipe, run)
    assert record["study_command"].startswith("python analysis/tracking_compare.py --datadir D --out OUT --set 3k --seeds 1")
    assert record["command"].endswith("DATADIR_TrackML=D bash ./train_TrackML.sh MambaB 3k --model-prefix OUT/runs/MambaB_seed1/net")
    (run / "record.json").write_text(json.dumps(dict(model="MambaB", seed=2, settings=dict(settings, epochs=4))))
    with pytest.raises(UserError, match=r"MambaB seed 2 .*differs: \{'epochs': \(4, 2\)\}"):
        adopt(recipe, run)


def _tracking_card(tmp_path: Path, **changes) -> Path:
    """A copy of a committed tracking card (and its weights) with ``changes`` applied, in ``tmp_path``."""
    src = TRACKING[0]
    data = yaml.safe_load(src.read_text())
    (tmp_path / data["weights"]["file"]).write_bytes((src.parent / data["weights"]["file"]).read_bytes())
    data.update(changes)
    return write_card(tmp_path / src.name, data)


def test_tracking_card_with_wrong_options_or_network_is_named(tmp_path):
    opts = dict(read_card(TRACKING[0]).options, size="M")
    with pytest.raises(CardError, match=r"does not match its weights .*size.*'M'.*shape: "):
        load(_tracking_card(tmp_path, options=opts))
    other = "example_MambaA.py" if read_card(TRACKING[0]).network != "example_MambaA.py" else "example_HEPT.py"
    with pytest.raises(CardError, match=rf"{other}.*(missing from the weights|not in the network|shape)"):
        load(_tracking_card(tmp_path, network=other))
    with pytest.raises(CardError, match="unknown family 'trucking'"):
        family(read_card(_tracking_card(tmp_path, family="trucking")))


def test_jet_tools_refuse_a_tracking_card(capsys):
    from bad_inputs import assert_user_error, call

    sys.path.insert(0, str(REPO / "analysis"))
    import profile_model

    res = call(profile_model.main, ["--checkpoint", TRACKING[0].stem, "--length", "16"], capsys)
    assert_user_error(res, TRACKING[0].stem, "tracking checkpoint", "takes jets")


# ----------------------------------------------------------------- pileup: committed checkpoints
@pytest.fixture(scope="module")
def pileup_check(tmp_path_factory):
    """The check events of the pileup cards (two generated mu = 200 events, ~10 CPU-s), made with the cards' commands."""
    commands = {tuple(read_card(p).get("check.commands")) for p in PILEUP}
    assert len(commands) == 1, commands  # every pileup card names the same check events
    out = tmp_path_factory.mktemp("pileup_check")
    for cmd in commands.pop():
        subprocess.run([sys.executable, *cmd.replace("DIR", str(out)).split()[1:]], check=True, cwd=REPO, capture_output=True)
    return str(out / "processed/*/*.root")


def test_a_pileup_checkpoint_is_committed():
    assert PILEUP and all(read_card(p).get("data.mu") == 200 for p in PILEUP)


@pytest.mark.slow  # ~10 s of generation, then one forward per event of ~13k particles
@pytest.mark.parametrize("card_path", PILEUP, ids=lambda p: p.stem)
def test_committed_pileup_checkpoint_reproduces_its_card(card_path, pileup_check):
    model, card = load(f"models/{card_path.stem}")  # by name, sha256 checked, strict load
    assert family(card) == "pileup" and card.get("weights.sha256") == sha256sum(card.weights_path)
    got, bad = check_card(card, model, load_data_config(str(REPO / card.data_config)), pileup_check)
    assert not bad, bad
    assert got["n_events"] == 2 and got["n_scored"] > 1000
    assert "roc_auc" in headline(card)


# ----------------------------------------------------------------- pileup: a tiny random model, not committed
PILEUP_OPTIONS = dict(size="S", h_dim=16, n_layers=2, head_hidden=16, seed=0)


@pytest.fixture(scope="module")
def pileup_setup(tmp_path_factory):
    """A random MambaB pileup model saved with a pileup card, and one test file of 4 tiny events."""
    from partx.models_store import pileup
    from partx.perf.models import load_network_module

    folder = tmp_path_factory.mktemp("pileup_card")
    files = str(pileup_tiny.write_file(folder / "data" / "test.root", [100, 101, 102, 103]))
    dc = load_data_config(str(REPO / "data/Pileup/Pileup_processed.yaml"))
    model, _ = load_network_module(REPO / "networks/example_MambaBPileup.py").get_model(dc, **PILEUP_OPTIONS)
    torch.save(model.state_dict(), folder / "tiny_pu.pt")
    measured = pileup.evaluate(model, dc, files)
    data = dict(name="tiny_pu", family="pileup", model="MambaB", network="example_MambaBPileup.py", options=PILEUP_OPTIONS,
                data_config="data/Pileup/Pileup_processed.yaml",
                weights=dict(file="tiny_pu.pt", sha256=sha256sum(folder / "tiny_pu.pt")),
                metrics=dict(measured),
                check=dict(files="data/test.root", batch_size=1, tolerance=1e-4,
                           metrics={k: measured[k] for k in ("roc_auc", "average_precision", "n_events")}))
    return write_card(folder / "tiny_pu.yaml", data), dc, files, model


def test_pileup_card_reproduces_its_metrics_as_the_weaver_hook_scores_them(pileup_setup):
    from test_pileup_models import fake_batches

    from partx.train.pileup import make_evaluate_fn

    path, dc, files, original = pileup_setup
    model, card = load(path)
    assert family(card) == "pileup" and headline(card).startswith("roc_auc ")
    got, bad = check_card(card, model, dc, files)
    assert not bad, bad
    assert got["n_events"] == 4 and 0.0 < got["roc_auc"] < 1.0
    # the same events as weaver batches through the weaver test hook: the same pooled ROC AUC
    hook = make_evaluate_fn(jets=False)(original, fake_batches([100, 101, 102, 103]), "cpu", 0)
    assert got["roc_auc"] == pytest.approx(hook, abs=1e-6)


def test_pileup_card_whose_weights_changed_fails_its_check(pileup_setup, tmp_path):
    path, dc, files, _ = pileup_setup
    model, card = load(path)
    with torch.no_grad():  # other weights under the same card: the check names the metrics that moved
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    _, bad = check_card(card, model, dc, files)
    assert bad and bad[0].startswith("roc_auc: card ")
    data = yaml.safe_load(path.read_text())
    data["options"] = dict(PILEUP_OPTIONS, h_dim=24)
    moved = tmp_path / "tiny_pu.yaml"
    (tmp_path / "tiny_pu.pt").write_bytes((path.parent / "tiny_pu.pt").read_bytes())
    write_card(moved, data)
    with pytest.raises(CardError, match=r"does not match its weights tiny_pu\.pt: network example_MambaBPileup\.py"):
        load(moved)


def test_evaluate_cli_scores_a_card_and_names_bad_input(pileup_setup, tmp_path, capsys):
    import json

    from bad_inputs import assert_user_error, call

    from partx.models_store.__main__ import main

    path, _, files, _ = pileup_setup
    res = call(main, ["evaluate", path, "--data", files], capsys)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["roc_auc"] == pytest.approx(read_card(path).get("metrics.roc_auc"), abs=1e-6)
    assert_user_error(call(main, ["evaluate", path, "--data", str(tmp_path / "none*.root")], capsys), "no file matches")
    assert_user_error(call(main, ["evaluate", "PFN_gen-small_full", "--data", files], capsys), "jets card", "evaluate_jets.py")


# ----------------------------------------------------------------- --checkpoint in a tracking tool
def test_tracking_cost_measures_a_committed_checkpoint(tmp_path, capsys):
    import csv

    sys.path.insert(0, str(REPO / "analysis"))
    import tracking_cost
    from bad_inputs import assert_user_error, call

    card = read_card(TRACKING[0])
    out = tmp_path / "out"
    rc = tracking_cost.main(["--checkpoint", f"models/{card.name}", "--hits", "64", "--device", "cpu", "--threads", "1",
                             "--no-progress", "--no-memory", "--time-budget", "0.1", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader((out / "tracking_cost.csv").open()))
    assert [(r["model"], r["size"], r["status"]) for r in rows] == [(card.get("model"), "S", "ok")]
    assert int(rows[0]["params"]) == card.get("weights.parameters")
    res = call(tracking_cost.main, ["--checkpoint", card.name, "--models", "HEPT", "--out", tmp_path / "x"], capsys)
    assert_user_error(res, "--checkpoint", "--models")
    res = call(tracking_cost.main, ["--checkpoint", "PFN_gen-small_full", "--hits", "64", "--out", tmp_path / "y"], capsys)
    assert_user_error(res, "PFN_gen-small_full", "not a tracking one")
