"""The variant accuracy protocol: its statistics on hand-made numbers, the sizing of the models, the seeding
of weaver runs (same seed -> identical weights; other seed -> other weights) and a tiny run of the command."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from partx import registry
from partx.studies import stats
from partx.studies import variant_accuracy as va

sys.path.insert(0, str(Path(__file__).parent))
import jetclass_fixture  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N = 8  # jets per class and file of the tiny dataset
TINY = {"PFN": "-o phi_sizes (8,) -o f_sizes (8,)",
        "ParT": "-o num_layers 1 -o embed_dims [8,8] -o pair_embed_dims [4] -o num_heads 1 -o num_cls_layers 1 -o fc_params []"}


# ---- statistics on hand-made numbers ---------------------------------------------------------------------

def test_summary_and_paired_difference():
    s = stats.summary([0.50, 0.52, 0.54, None, float("nan")])  # None / NaN dropped
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.52) and s["std"] == pytest.approx(0.02)
    assert s["se"] == pytest.approx(0.02 / math.sqrt(3))
    one = stats.summary([0.5])
    assert one["n"] == 1 and math.isnan(one["std"]) and math.isnan(one["se"])
    # seed 4 only in a: not paired; differences 0.01, 0.02, 0.04
    d = stats.paired_difference({1: 0.50, 2: 0.52, 3: 0.54, 4: 0.9}, {1: 0.49, 2: 0.50, 3: 0.50})
    assert d["seeds"] == [1, 2, 3] and d["mean"] == pytest.approx(0.07 / 3)
    assert d["std"] == pytest.approx(0.0152753, abs=1e-6) and d["se"] == pytest.approx(0.0152753 / math.sqrt(3), abs=1e-6)


def test_paired_test_se_by_hand():
    a = np.array([1, 1, 0, 0])
    b = np.array([1, 0, 1, 0])
    # per-jet differences 0, 1, -1, 0: std (ddof 1) sqrt(2/3), SE sqrt(2/3) / 2
    assert stats.paired_test_se(a, b) == pytest.approx(math.sqrt(2 / 3) / 2)
    # two seeds each: the seed-averaged correctness is compared jet by jet: (1, .5, .5, 0) - (.5, .5, .5, .5)
    a2, b2 = np.array([[1, 1, 1, 0], [1, 0, 0, 0]]), np.array([[1, 0, 1, 0], [0, 1, 0, 1]])
    d = np.array([0.5, 0.0, 0.0, -0.5])
    assert stats.paired_test_se(a2, b2) == pytest.approx(d.std(ddof=1) / 2)
    assert stats.paired_test_se(a, a) == 0.0  # identical predictions: no test-set error in the difference
    with pytest.raises(ValueError, match="not the same test set"):
        stats.paired_test_se(a, np.ones(5))


def test_verdict_is_two_standard_errors():
    assert stats.verdict(0.011, 0.005) == "higher (> 2 SE)"
    assert stats.verdict(-0.02, 0.005) == "lower (> 2 SE)"
    assert stats.verdict(0.009, 0.005) == "not distinguishable"
    assert stats.verdict(0.010, 0.005) == "not distinguishable"  # exactly 2 SE is not more than 2 SE
    assert stats.verdict(0.5, float("nan")) == "not distinguishable"  # one seed: no error, no claim
    assert stats.combined_se(0.003, 0.004) == pytest.approx(0.005)


def test_design_numbers():
    """The protocol's sizing (docs/variant_accuracy.md): sigma 0.5 %, 3 seeds, 100,000 test jets."""
    d = stats.design_se(0.005, 3, 100_000)
    assert d["seed"] == pytest.approx(math.sqrt(2 * 0.005**2 / 3))          # 0.00408
    assert d["test"] == pytest.approx(math.sqrt(0.5 / 100_000))             # 0.00224
    assert d["total"] == pytest.approx(0.004655, abs=1e-6) and d["total"] <= 0.005
    assert stats.seeds_needed(math.sqrt(2) * 0.005, d["test"], 0.005) == 3  # 5e-5 / (2.5e-5 - 5e-6) = 2.5
    assert stats.test_jets_needed(d["seed"], 0.005) in (60_000, 60_001)     # 0.5 / (2.5e-5 - 1.667e-5)
    assert stats.seeds_needed(0.01, 0.006, 0.005) is None                   # the test term alone is too large
    assert stats.seeds_needed(0.031 * math.sqrt(2), 0.00224, 0.005) == 97   # the 3-epoch demo spread (3.1 %): 96.2


def _rec(model, seed, acc, n_test):
    return {"model": model, "seed": seed, "accuracy": acc, "auc": 0.9, "n_test": n_test, "train_jets_per_s": 100.0,
            "train_wall_s": 10.0, "model_options": ""}


def test_summarize_pairs_seeds_and_jets():
    rng = np.random.default_rng(0)
    n = 2000
    base = {s: rng.random(n) < 0.50 for s in (1, 2, 3)}
    # B: ParT's predictions with 60 jets per seed flipped to correct -> +3 pp on every seed
    better = {}
    for s, c in base.items():
        c = c.copy()
        c[np.flatnonzero(~c)[:60]] = True
        better[s] = c
    correct = {("ParT", s): base[s] for s in base} | {("B", s): better[s] for s in better}
    records = [_rec(m, s, float(c.mean()), n) for (m, s), c in correct.items()]
    summary = va.summarize(records, correct, "ParT", target=0.005)
    d = summary["B"]["diff"]
    assert d["mean"] == pytest.approx(0.03) and d["std"] == pytest.approx(0.0, abs=1e-12)  # same +60 on every seed
    diff_jets = np.mean([better[s] for s in base], 0) - np.mean([base[s] for s in base], 0)
    assert d["se_test"] == pytest.approx(diff_jets.std(ddof=1) / math.sqrt(n))
    assert d["se"] == pytest.approx(d["se_test"]) and d["verdict"] == "higher (> 2 SE)"
    assert summary["ParT"]["accuracy"]["n"] == 3 and "diff" not in summary["ParT"]
    ach = va.achieved(summary, 0.005)
    assert ach["max_se"] == pytest.approx(d["se"]) and ach["met"] == (d["se"] <= 0.005)


# ---- sizing of the models --------------------------------------------------------------------------------

def test_sized_options_from_the_registry():
    def probe(name, options):  # the networks that take ParT block options build, the others raise
        return None if registry.get(name).network.startswith("example_") and name not in ("PN", "PFN", "PCNN") else "TypeError: no"

    demo_u = dict(va.DEMO_SHAPE, **va.DEMO_PAIR)
    assert va.sized_options("ParT", "demo", probe) == (demo_u, "demo size")
    assert va.sized_options("ParT-v3", "demo", probe)[0] == demo_u          # the registry's version stays
    assert va.sized_options("ParT-plain", "demo", probe)[0] == va.DEMO_SHAPE  # keeps its pair_embed_dims None
    assert va.sized_options("ParT-demo", "demo", probe) == ({}, "demo size (registered)")
    opts, note = va.sized_options("PFN", "demo", probe)
    assert opts == {} and note.startswith("registered size")
    assert va.sized_options("ParT", "registered", probe) == ({}, "registered size")
    assert "ParT-demo" not in va.default_models() and {"ParT-v2", "ParT-v3", "ParT"} <= set(va.default_models())


def test_part_versions_are_registered_and_build():
    """ParT-v2 / ParT-v3: weaver's block defaults (v2 SwiGLU feed-forward, v3 also RMSNorm, no biases)."""
    assert registry.get("ParT-v2").options == {"version": 2} and registry.get("ParT-v3").options == {"version": 3}
    from weaver.utils.data.config import DataConfig

    from partx.perf.models import build_model, resolve_model

    dc = DataConfig.load(str(REPO / "data/JetClass/JetClass_kin.yaml"), load_observers=False)
    tiny = dict(num_layers=1, embed_dims=[8, 8], pair_embed_dims=[4], num_heads=1, num_cls_layers=1, fc_params=[])
    names = {v: {n for n, _ in build_model(resolve_model(f"ParT-v{v}" if v > 1 else "ParT", overrides=tiny), dc, 16)
                 .named_parameters()} for v in (1, 2, 3)}
    assert not any("fc1_g" in n for n in names[1]) and any("fc1_g" in n for n in names[2])
    assert any(n.endswith("bias") and ".blocks." in n for n in names[2])
    assert not any(n.endswith("bias") and ".blocks." in n and "norm" not in n for n in names[3])


# ---- seeding ---------------------------------------------------------------------------------------------

def test_hash_seed_env():
    from partx.weaver_run import _hash_seed_env

    assert _hash_seed_env({"PARTX_SEED": "7"}) == {"PARTX_SEED": "7", "PYTHONHASHSEED": "7"}
    assert _hash_seed_env({"PARTX_SEED": "7", "PYTHONHASHSEED": "3"}) is None  # the user's own wins
    assert _hash_seed_env({}) is None and _hash_seed_env({"PARTX_SEED": ""}) is None


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return jetclass_fixture.write_dataset(tmp_path_factory.mktemp("va") / "d", jets_per_file=N, seed=3)


def _cli():
    spec = importlib.util.spec_from_file_location("variant_accuracy_cli", REPO / "analysis" / "variant_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _smoke(data, out, seeds="1,2", collect=False, extra=()):
    return _cli()(["--data", f"{N}={data}", "--models", "ParT,PFN", "--seeds", seeds, "--epochs", "1",
                   "--batch-size", "16", "--features", "kin", "--size", "registered",
                   "--model-opts", f"PFN={TINY['PFN']}", "--model-opts", f"ParT={TINY['ParT']}",
                   "--out", str(out), "--quiet", *(["--collect"] if collect else []), *extra])


def _weights(run_dir: Path) -> dict:
    import torch

    return torch.load(run_dir / "net_best_epoch_state.pt", map_location="cpu", weights_only=True)


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_protocol_smoke_and_seeding(data, tmp_path):
    """The command end to end (2 models x 2 seeds, 1 epoch, tiny data), then seed 1 of ParT again in another
    folder: identical weights and accuracy; seed 2 gives other weights."""
    out = tmp_path / "p"
    assert _smoke(data, out) == 0
    doc = json.loads((out / "results.json").read_text())
    assert {(r["model"], r["seed"]) for r in doc["runs"]} == {("ParT", 1), ("ParT", 2), ("PFN", 1), ("PFN", 2)}
    d = doc["summary"]["PFN"]["diff"]
    assert d["seeds"] == [1, 2] and math.isfinite(d["se"]) and d["se_test"] > 0
    assert d["verdict"] in ("higher (> 2 SE)", "lower (> 2 SE)", "not distinguishable")
    md = (out / "results.md").read_text()
    assert "Achieved: largest SE of a difference" in md and "PFN" in md and (out / "variant_accuracy.png").is_file()
    runs = out / "runs"
    assert (runs / f"ParT_n{N}_s1" / "test_correct.npz").is_file()
    # re-run: everything finished, nothing trained; --collect with a benchmark JSON adds the Pareto plot
    bench = {"config": {"threads": 1}, "rows": [{"model": m, "N": 128, "batch": 64, "dtype": "fp32", "status": "ok",
                                                 "throughput": t} for m, t in (("ParT", 100.0), ("PFN", 5000.0))]}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    assert _smoke(data, out, collect=True, extra=["--benchmark", str(tmp_path / "bench.json")]) == 0
    assert (out / "pareto.png").is_file()
    # seeding: ParT seed 1 once more, elsewhere
    again = tmp_path / "again"
    assert _cli()(["--data", f"{N}={data}", "--models", "ParT", "--seeds", "1", "--epochs", "1", "--batch-size", "16",
                   "--features", "kin", "--size", "registered", "--model-opts", f"ParT={TINY['ParT']}",
                   "--out", str(again), "--quiet"]) == 0
    first, second = _weights(runs / f"ParT_n{N}_s1"), _weights(again / "runs" / f"ParT_n{N}_s1")
    assert _same(first, second), "two runs with seed 1 should give identical weights"
    assert not _same(first, _weights(runs / f"ParT_n{N}_s2")), "seeds 1 and 2 should give different weights"
    rec1 = json.loads((runs / f"ParT_n{N}_s1" / "metrics.json").read_text())
    rec2 = json.loads((again / "runs" / f"ParT_n{N}_s1" / "metrics.json").read_text())
    assert rec1["accuracy"] == rec2["accuracy"] and rec1["val_metric_per_epoch"] == rec2["val_metric_per_epoch"]


@pytest.mark.parametrize("args, message", [
    (["--models", "ParT,BDT"], "unknown model 'BDT'"),
    (["--models", "PFN"], "baseline 'ParT' is not among the models"),
    (["--seeds", "1,1"], "seeds must be distinct"),
    (["--size", "huge"], "invalid choice"),
    (["--data", "0=X"], "SIZE >= 1"),
    (["--target-se", "5"], "fraction"),
])
def test_bad_arguments_exit_2(data, tmp_path, capsys, args, message):
    argv = ["--data", f"{N}={data}", "--out", str(tmp_path / "o"), "--check", "--size", "registered", *args]
    try:
        rc = _cli()(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("ERROR") == 1
    assert not (tmp_path / "o").exists()
