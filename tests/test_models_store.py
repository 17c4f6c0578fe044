"""models/: committed checkpoints reproduce their cards; a mismatched card is named; official-format weights
load; the official fetch against a local server (good, bad checksum, changed file, offline).

Only 127.0.0.1 is contacted. The check subset is generated once (partx.datagen, ~15 CPU-s).
"""

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from partx.models_store import CardError, load, read_card
from partx.models_store import official
from partx.models_store.card import sha256sum, write_card
from partx.models_store.loader import models_dir
from partx.models_store.recipes import CHECK
from partx.perf.harness import load_data_config

from test_get_datasets import LocalServer, closed_port  # the local HTTP server of the dataset downloader tests

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
#: the committed JetClass checkpoints (family jets; tracking cards: tests/test_models_store_families.py)
COMMITTED = sorted(p for p in (REPO / "models").glob("*.yaml") if (yaml.safe_load(p.read_text()) or {}).get("family", "jets") == "jets")
FULL = load_data_config(str(REPO / "data/JetClass/JetClass_full.yaml"))

#: jets of the 200-jet check subset whose predicted class may differ from the card's count. The weights and
#: inputs are identical, so only float rounding differs between machines (BLAS kernels, thread counts): it can
#: flip a jet whose two best scores tie to ~1e-6. Two such jets in 200 is generous; a wrong network, option,
#: data config or weight file changes tens of predictions (accuracy differences of 0.1 and more).
CHECK_TOLERANCE = 2


@pytest.fixture(scope="module")
def check_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("check")
    subprocess.run([sys.executable, "-m", "partx.datagen", "jetclass", "--out", str(out), "--jets-per-class",
                    str(CHECK["jets_per_class_arg"]), "--splits", CHECK["split"], "--seed", str(CHECK["seed"]),
                    "--workers", "2", "--quiet"], check=True, cwd=REPO, capture_output=True)
    return sorted(glob.glob(str(out / "Pythia" / "test_20M" / "*.root")))


def test_models_folder_has_checkpoints():
    assert COMMITTED, "no committed checkpoint in models/ (run make models)"


@pytest.mark.parametrize("card_path", COMMITTED, ids=lambda p: p.stem)
def test_committed_checkpoint_reproduces_its_card(card_path, check_files):
    from partx.models_store.evaluate import binomial_se, evaluate_files

    model, card = load(f"models/{card_path.stem}")  # by name, as the CLIs take it; sha256 checked
    assert card.get("weights.sha256") == sha256sum(card.weights_path)
    metrics, scores, labels, _ = evaluate_files(model, FULL, check_files)
    correct = int((scores.argmax(1) == labels).sum())
    assert metrics.n_jets == card.get("check.n_jets") == 10 * CHECK["jets_per_class"]
    assert abs(correct - card.get("check.correct")) <= CHECK_TOLERANCE, (correct, card.get("check.correct"))
    # and the card's test-set accuracy is consistent with the check subset (3 combined binomial errors)
    p, n = card.get("metrics.accuracy"), card.get("metrics.n_jets")
    se = (binomial_se(p, n) ** 2 + binomial_se(p, metrics.n_jets) ** 2) ** 0.5
    assert abs(metrics.accuracy - p) < 3 * se + 1e-9
    assert p > 0.2  # clearly above chance (0.10 over ten classes)


# ----------------------------------------------------------------- tiny cards written here (no training)
def _tiny_pfn_card(folder: Path, **overrides) -> Path:
    """A PFN checkpoint (random weights, small Phi/F) with its card, in ``folder``."""
    from partx.perf.models import load_network_module

    options = {"phi_sizes": [16, 16], "f_sizes": [16]}
    torch.manual_seed(0)
    model, _ = load_network_module(REPO / "networks/example_PFN.py").get_model(FULL, **options)
    weights = folder / "tiny.pt"
    torch.save(model.state_dict(), weights)
    data = dict(name="tiny", model="PFN", network="example_PFN.py", options=options,
                data_config="data/JetClass/JetClass_full.yaml",
                weights=dict(file="tiny.pt", sha256=sha256sum(weights)))
    data.update(overrides)
    return write_card(folder / "tiny.yaml", data)


def test_tiny_card_loads(tmp_path):
    model, card = load(_tiny_pfn_card(tmp_path))
    assert card.name == "tiny" and not model.training


def test_card_with_wrong_options_names_the_mismatch(tmp_path):
    path = _tiny_pfn_card(tmp_path, options={"phi_sizes": [32, 16], "f_sizes": [16]})
    with pytest.raises(CardError, match=r"does not match its weights tiny\.pt.*phi_sizes.*shape: .*\(16, 17.*\(32, 17"):
        load(path)


def test_card_with_wrong_network_names_the_mismatch(tmp_path):
    path = _tiny_pfn_card(tmp_path, network="example_ParticleNet.py", options={})
    with pytest.raises(CardError, match=r"example_ParticleNet\.py.*missing from the weights: mod\..*not in the network"):
        load(path)


def test_changed_weights_and_incomplete_card_are_named(tmp_path):
    path = _tiny_pfn_card(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["weights"]["sha256"] = "0" * 64
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match="sha256 .* but tiny.yaml records 0000"):
        load(path)
    del data["network"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CardError, match="lacks network"):
        read_card(path)
    with pytest.raises(CardError, match="no model card for 'no_such_model'.*available"):
        load("no_such_model")


# ----------------------------------------------------------------- official-format weights
class OfficialWrapper(torch.nn.Module):
    """The official network files' structure: weaver's model as ``self.mod`` (what the .pt files' keys say)."""

    def __init__(self, cls, **cfg):
        super().__init__()
        self.mod = cls(**cfg)


def _official_folder(tmp_path: Path, name: str, state: dict) -> Path:
    """A models folder holding the committed official card ``name`` and ``state`` as its weights."""
    (tmp_path / "official").mkdir()
    shutil.copy(REPO / "models" / "official" / f"{name}.yaml", tmp_path / "official")
    torch.save(state, tmp_path / "official" / f"{name}.pt")
    return tmp_path


def _jets(n_features: int, B: int = 3, N: int = 30):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, n_features, N, generator=g)
    p3 = torch.randn(B, 3, N, generator=g) * 20
    v = torch.cat([p3, p3.norm(dim=1, keepdim=True) + 0.5], dim=1)
    mask = torch.ones(B, 1, N)
    mask[1, :, 17:] = 0
    mask[2, :, 5:] = 0
    points = torch.randn(B, 2, N, generator=g) * 0.3
    return points * mask, x * mask, v * mask, mask


def test_official_card_matches_official_cards_in_code():
    for name in official.OFFICIAL:
        assert yaml.safe_load((REPO / "models/official" / f"{name}.yaml").read_text()) == official.card_data(name)


def test_official_format_part_state_dict_loads_into_partx_part(tmp_path, monkeypatch):
    """weaver's ParT in the official configuration (example_ParticleTransformer.py of the ParT repository),
    randomly initialised, saved as the official file is -> loads through the official card, same outputs."""
    from weaver.nn.model.ParticleTransformer import ParticleTransformer

    cfg = dict(input_dim=17, num_classes=10, pair_input_dim=4, use_pre_activation_pair=False,
               embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8, num_cls_layers=2,
               block_params=None, cls_block_params={"dropout": 0, "attn_dropout": 0, "activation_dropout": 0},
               fc_params=[], activation="gelu", trim=True, for_inference=False)
    torch.manual_seed(0)
    ref = OfficialWrapper(ParticleTransformer, **cfg).eval()
    with torch.no_grad():  # off the initial values, so a parameter read by the wrong layer shows
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    monkeypatch.setenv("PARTX_MODELS", str(_official_folder(tmp_path, "ParT_full", ref.state_dict())))
    ours, card = load("official/ParT_full")
    assert sum(p.numel() for p in ours.parameters()) == 2_143_486
    points, x, v, mask = _jets(17)
    from partx.perf.models import settle_trimmers

    settle_trimmers(ref)
    with torch.no_grad():
        expected = ref.mod(x, v=v, mask=mask)
        torch.testing.assert_close(ours(points, x, v, mask), expected, atol=1e-5, rtol=0)
    # the card's use_pre_activation_pair=False matters: partx's default (True) gives other outputs
    card.data["options"] = {}
    from partx.models_store.loader import build

    with torch.no_grad():
        assert not torch.allclose(build(card)(points, x, v, mask), expected, atol=1e-3)


def test_official_format_particlenet_loads_into_partx_pn(tmp_path, monkeypatch):
    from weaver.nn.model.ParticleNet import ParticleNet

    cfg = dict(input_dims=7, num_classes=10, conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))],
               fc_params=[(256, 0.1)], use_fusion=False, use_fts_bn=True, use_counts=True, for_inference=False)
    torch.manual_seed(0)
    ref = OfficialWrapper(ParticleNet, **cfg).eval()
    monkeypatch.setenv("PARTX_MODELS", str(_official_folder(tmp_path, "ParticleNet_kin", ref.state_dict())))
    ours, card = load("official/ParticleNet_kin")
    assert card.data_config.endswith("JetClass_kin.yaml")
    points, x, v, mask = _jets(7)
    with torch.no_grad():
        torch.testing.assert_close(ours(points, x, v, mask), ref.mod(points, x, mask), atol=1e-5, rtol=0)


# ----------------------------------------------------------------- official fetch against 127.0.0.1
@pytest.fixture
def fake_official(monkeypatch):
    """One official entry whose bytes the local server holds (its git blob id computed here, so the real
    blob check runs)."""
    data = b"not really ParT weights, " * 20
    import hashlib

    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
    monkeypatch.setattr(official, "OFFICIAL", {"ParT_kin": official.OfficialFile("ParT_kin", blob, None, 10, 10_000)})
    server = LocalServer()
    server.add("ParT_kin.pt", data)
    yield server, data
    server.close()


def test_fetch_verifies_records_and_reverifies(fake_official, tmp_path):
    server, data = fake_official
    official.fetch(None, tmp_path, base_url=server.url, progress=False, log=lambda m: None)
    dest = tmp_path / "official" / "ParT_kin.pt"
    assert dest.read_bytes() == data and not list(tmp_path.glob("official/*.part"))
    lock = json.loads((tmp_path / "official.lock").read_text())
    assert lock["ParT_kin"]["sha256"] == sha256sum(dest)
    server.files.clear()  # a later fetch verifies the file present against the lock, without the network
    official.fetch(None, tmp_path, base_url=server.url, progress=False, log=lambda m: None)
    dest.write_bytes(data[:-1] + b"!")  # changed on disk: fails the recorded checks, fetched again -> 404
    with pytest.raises(official.DownloadError, match="HTTP 404"):
        official.fetch(None, tmp_path, base_url=server.url, progress=False, log=lambda m: None)


def test_fetch_refuses_bad_bytes_and_leaves_nothing(fake_official, tmp_path):
    server, data = fake_official
    server.add("ParT_kin.pt", data.replace(b"ParT", b"PART"))
    with pytest.raises(official.ChecksumError, match="git blob id .* differs"):
        official.fetch(None, tmp_path, base_url=server.url, progress=False, log=lambda m: None)
    assert not (tmp_path / "official").exists() or not list((tmp_path / "official").iterdir())
    assert not (tmp_path / "official.lock").exists()
    server.add("ParT_kin.pt", b"<html/>")  # shorter than the 10-byte minimum of the fake entry
    with pytest.raises(official.ChecksumError, match="outside the plausible"):
        official.fetch(None, tmp_path, base_url=server.url, progress=False, log=lambda m: None)


def test_fetch_offline_is_one_line_with_exit_1(tmp_path):
    cmd = [sys.executable, str(REPO / "get_datasets.py"), "models", "--subsets", "ParT_kin", "--no-progress",
           "--mirror", f"http://127.0.0.1:{closed_port()}", "--retries", "0"]
    env = dict(__import__("os").environ, PARTX_MODELS=str(tmp_path))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: network unreachable") and "copy them into" in errors[0]
    assert not (tmp_path / "official.lock").exists()


def test_models_dir_default_is_the_repository_folder(monkeypatch):
    monkeypatch.delenv("PARTX_MODELS", raising=False)
    assert models_dir() == REPO / "models"


def test_partx_seed_fixes_torch_numpy_and_rejects_garbage():
    import numpy as np

    from partx.cli import UserError
    from partx.weaver_run import seed_from_env

    draws = []
    for _ in range(2):
        assert seed_from_env({"PARTX_SEED": "5"}) == 5
        draws.append((torch.rand(3), np.random.rand(3)))
    torch.testing.assert_close(draws[0][0], draws[1][0])
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    assert seed_from_env({}) is None
    with pytest.raises(UserError, match="PARTX_SEED must be a non-negative integer"):
        seed_from_env({"PARTX_SEED": "one"})
