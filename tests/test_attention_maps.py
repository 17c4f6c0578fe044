"""Attention recording (partx.interpret.record), its statistics, and analysis/attention_maps.py end to end."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_inputs import assert_user_error, call
from jetclass_fixture import write_file
from test_part import SMALL, jets
from weaver.nn.model.ParticleTransformer import ParticleTransformer as WeaverParT

from partx.datagen import schema
from partx.interpret.record import AttentionNotApplicable, record_attention
from partx.interpret.stats import AttentionStats, delta_r, row_statistics, subjet_shares
from partx.models.part import ParticleTransformer

logging.getLogger("weaver").setLevel(logging.WARNING)
REPO = Path(__file__).resolve().parents[1]
N_REAL = (40, 23, 5, 1)


def _model(kind: str = "partx", **over) -> torch.nn.Module:
    torch.manual_seed(0)
    cls = WeaverParT if kind == "weaver" else ParticleTransformer
    model = cls(**dict(SMALL, **over)).eval()
    with torch.no_grad():  # move LayerScale-like constants off 1 so a skipped factor would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _capture_outputs(model: torch.nn.Module) -> tuple[dict, list]:
    """Forward hooks keeping each attention module's (input args, output)."""
    seen, handles = {}, []
    for group in ("blocks", "cls_blocks"):
        for i, block in enumerate(getattr(model, group)):
            handles.append(block.attn.register_forward_hook(
                lambda m, a, o, key=f"{group}.{i}": seen.__setitem__(key, (a, o[0] if isinstance(o, tuple) else o))))
    return seen, handles


@pytest.mark.parametrize("kind", ["partx", "weaver"])
def test_recorded_weights_reproduce_every_attention_output(kind):
    """out_proj(merge(W @ V)) from the recorded W and V equals what each attention module output with recording
    OFF (SDPA path), for real particles: the recorded weights are the model's attention."""
    model = _model(kind)
    x, v, mask = jets(F=7, n_real=N_REAL)
    seen, handles = _capture_outputs(model)
    with torch.no_grad():
        model(x, v, mask)
        reference = {k: o.clone() for k, (_, o) in seen.items()}
        for h in handles:
            h.remove()
        with record_attention(model, keep_values=True) as rec:
            model(x, v, mask)
    assert [r.name for r in rec.records] == ["blocks.0", "blocks.1", "cls_blocks.0"]
    for r in rec.records:
        attn = model.blocks[r.layer].attn if r.kind == "particle" else model.cls_blocks[r.layer].attn
        heads = (r.weights @ r.values).transpose(1, 2)  # (B, Nq, H, D)
        out = attn.out_proj(heads.reshape(*heads.shape[:2], -1))
        real = r.query_mask
        torch.testing.assert_close(out[real], reference[r.name][real], atol=2e-5, rtol=1e-4)
        if r.kind == "particle":
            assert r.qk is not None and r.u is not None  # both parts of the logits are kept
            logits = r.qk + r.u
            expect = torch.softmax(logits.masked_fill(~r.key_mask[:, None, None, :], float("-inf")), -1)
            torch.testing.assert_close(r.weights[real[:, None, :].expand(-1, r.weights.size(1), -1)],
                                       expect[real[:, None, :].expand(-1, r.weights.size(1), -1)], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mixer", ["sdpa", "flex", "reformer"])
def test_rows_sum_to_one_over_real_particles_and_padding_is_zero(mixer):
    model = _model(mixer=mixer, max_len=64)
    x, v, mask = jets(F=7, n_real=N_REAL)
    with torch.no_grad(), record_attention(model) as rec:
        model(x, v, mask)
    for r in rec.records:
        assert r.is_distribution
        sums = r.weights.sum(-1)  # (B, H, Nq)
        real_q = r.query_mask[:, None, :].expand_as(sums)
        torch.testing.assert_close(sums[real_q], torch.ones(int(real_q.sum())), atol=1e-5, rtol=0)
        assert (sums[~real_q] == 0).all()  # padded query rows
        assert (r.weights * (~r.key_mask)[:, None, None, :]).abs().max() == 0  # padded key columns
    assert rec.records[0].weights.shape[-1] == 40 and rec.records[-1].weights.shape[-1] == 41  # class token first


@pytest.mark.parametrize("mixer", ["sdpa", "flex", "linformer", "reformer"])
def test_outputs_identical_with_recording_on_and_off_and_modules_restored(mixer):
    model = _model(mixer=mixer, max_len=64)
    x, v, mask = jets(F=7, n_real=N_REAL)
    with torch.no_grad():
        before = model(x, v, mask)
        with record_attention(model) as rec:
            during = model(x, v, mask)
        after = model(x, v, mask)
    torch.testing.assert_close(during, before, atol=5e-6, rtol=1e-5)  # math vs fused path: rounding only
    assert torch.equal(after, before)
    for block in list(model.blocks) + list(model.cls_blocks):
        assert "forward" not in block.attn.__dict__ and not block.attn._forward_hooks
        assert not getattr(block.attn, "record_weights", False)
    assert len(rec.records) == 3


def test_reformer_effective_attention_reproduces_its_output():
    """The one-hot-values trick gives the weights the LSH attention actually applied."""
    model = _model(mixer="reformer", max_len=64)
    x, v, mask = jets(F=7, n_real=N_REAL)
    seen, handles = _capture_outputs(model)
    with torch.no_grad(), record_attention(model) as rec:
        model(x, v, mask)
    for h in handles:
        h.remove()
    r = rec.records[0]
    attn = model.blocks[0].attn
    (xin, m, *_), out = seen["blocks.0"]
    _, _, val = attn.split_heads(xin)
    mixed = attn.merge_heads(r.weights @ val, xin)
    torch.testing.assert_close(mixed[m], out[m], atol=2e-5, rtol=1e-4)
    assert "Reformer" in r.label


def test_linformer_is_labelled_and_mamba_is_not_applicable():
    model = _model(mixer="linformer", max_len=64)
    x, v, mask = jets(F=7, n_real=N_REAL)
    with torch.no_grad(), record_attention(model) as rec:
        model(x, v, mask)
    r = rec.records[0]
    assert not r.is_distribution and "Linformer" in r.label and r.slot_weights.shape[-1] == 32
    with pytest.raises(AttentionNotApplicable, match="not applicable"):
        with record_attention(_model(mixer="mamba", ordering="pt")):
            pass


def test_reordering_models_are_recorded_in_input_order():
    """A ParT that re-orders particles (ordering='pt') records the same maps as the same weights without."""
    plain = _model()
    ordered = ParticleTransformer(**dict(SMALL, ordering="pt")).eval()
    ordered.load_state_dict(plain.state_dict())
    x, v, mask = jets(F=7, n_real=N_REAL)
    with torch.no_grad():
        with record_attention(plain) as a:
            plain(x, v, mask)
        with record_attention(ordered) as b:
            ordered(x, v, mask)
    for ra, rb in zip(a.records, b.records):
        torch.testing.assert_close(rb.weights, ra.weights, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------ statistics

def _with_padding(w: torch.Tensor, n: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    full = torch.zeros(1, 1, n + pad, n + pad)
    full[0, 0, :n, :n] = w
    return full, torch.arange(n + pad)[None] < n


def test_one_hot_rows_are_perfectly_binary():
    n = 6
    w = torch.zeros(n, n)
    w[torch.arange(n), (torch.arange(n) + 1) % n] = 1.0  # each particle attends to its neighbour only
    w, km = _with_padding(w, n, 3)
    s = row_statistics(w, km)
    real = km[0]
    assert torch.equal(s["max_weight"][0, 0, real], torch.ones(n))
    assert torch.equal(s["top1_ge_half"][0, 0, real], torch.ones(n))
    assert torch.equal(s["argmax_self"][0, 0, real], torch.zeros(n))
    assert torch.equal(s["one_other"][0, 0, real], torch.ones(n))
    torch.testing.assert_close(s["entropy"][0, 0, real], torch.zeros(n))
    torch.testing.assert_close(s["eff_keys"][0, 0, real], torch.ones(n))


def test_uniform_rows_have_the_known_entropy():
    n = 5
    w, km = _with_padding(torch.full((n, n), 1.0 / n), n, 4)
    s = row_statistics(w, km)
    real = km[0]
    torch.testing.assert_close(s["max_weight"][0, 0, real], torch.full((n,), 1.0 / n))
    assert s["top1_ge_half"][0, 0, real].sum() == 0 and s["one_other"][0, 0, real].sum() == 0
    torch.testing.assert_close(s["entropy"][0, 0, real], torch.full((n,), math.log(n)))
    torch.testing.assert_close(s["eff_keys"][0, 0, real], torch.full((n,), float(n)))


def test_per_jet_means_and_standard_errors():
    """Two jets, one one-hot and one uniform: the summary is the mean over jets with its standard error."""
    n = 4
    onehot = torch.eye(n)
    uniform = torch.full((n, n), 1.0 / n)
    w = torch.stack([onehot, uniform])[:, None]  # (2, 1, n, n)
    m = torch.ones(2, n, dtype=torch.bool)
    st = AttentionStats()
    st.add_rows([("X",), ("X",)], "blocks.0", "full", w, m, m)
    got = st.summary()["binary"]["X"]["blocks.0"]["full"]["all"]
    assert got["max_weight"]["mean"] == pytest.approx((1 + 0.25) / 2)
    assert got["max_weight"]["sem"] == pytest.approx(np.std([1, 0.25], ddof=1) / math.sqrt(2))
    assert got["top1_ge_half"]["mean"] == pytest.approx(0.5) 
    assert got["argmax_self"]["mean"] == pytest.approx((1 + 0.25) / 2)  # ties: the first key (self for row 0)
    assert got["max_weight"]["n_jets"] == 2


def test_subjet_and_delta_r_statistics_on_hand_made_jets():
    # two clusters far apart; each particle attends only to its nearest neighbour (same cluster)
    eta = np.array([0.0, 0.07, 0.14, 0.6, 0.67, 0.74])
    phi = np.zeros(6)
    labels = np.array([0, 0, 0, 1, 1, 1])
    dr = delta_r(eta, phi)
    nearest = np.where(np.eye(6, dtype=bool), np.inf, dr).argmin(1)
    w = np.zeros((1, 6, 6))
    w[0, np.arange(6), nearest] = 1.0
    s = subjet_shares(w, labels)
    assert s["intra"] == pytest.approx(1) and s["inter"] == 0 and s["self"] == 0 and s["link_intra"] == 1
    assert s["uniform_intra"] == pytest.approx(2 / 6) and s["uniform_inter"] == pytest.approx(3 / 6)
    assert s["uniform_link_intra"] == pytest.approx(2 / 5)
    u = subjet_shares(np.full((1, 6, 6), 1 / 6), labels)
    assert u["intra"] == pytest.approx(u["uniform_intra"]) and u["inter"] == pytest.approx(u["uniform_inter"])
    st = AttentionStats()
    st.add_jet_geometry("X", "blocks.0", w, dr, np.array([0, 0, 1, 1, 2, 2]))
    prof = st.summary()["delta_r"]["X"]["blocks.0"]
    weights = np.nan_to_num(np.asarray(prof["mean_weight"], float))
    assert np.flatnonzero(weights).tolist() == [1]  # all attention at DeltaR = 0.07 (bin 0.05-0.10)
    assert weights[1] == pytest.approx(3 / 4)  # 3 of the 4 pairs at 0.07 per cluster carry weight 1
    pt = st.summary()["partner_type"]["X"]["blocks.0"]
    assert np.asarray(pt["share"])[0, 0] == pytest.approx(1.0)  # type-0 particles (0, 1) attend to each other


# ------------------------------------------------------------------------------------------ the script

TINY = ["-o", "num_layers", "2", "-o", "embed_dims", "[16,16]", "-o", "pair_embed_dims", "[8]",
        "-o", "num_heads", "2", "-o", "num_cls_layers", "1"]
DATA_CONFIG = str(REPO / "data/JetClass/JetClass_kin.yaml")
NETWORK = str(REPO / "networks/example_ParticleTransformer.py")


def _script():
    spec = importlib.util.spec_from_file_location("attention_maps_cli", REPO / "analysis/attention_maps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Three classes of fixture jets, and a weaver-format checkpoint of weaver's OWN ParT architecture
    (the state_dict of weaver's ParticleTransformer under the network wrapper's "mod." prefix)."""
    tmp = tmp_path_factory.mktemp("am")
    for c in (0, 1, 8):
        write_file(tmp / "data" / f"{schema.CLASSES[c].stem}_000.root", 8, c, seed=c)
    torch.manual_seed(0)
    ref = WeaverParT(input_dim=7, num_classes=10, embed_dims=[16, 16], pair_embed_dims=[8], num_heads=2,
                     num_layers=2, num_cls_layers=1, pair_input_dim=4, fc_params=[])
    ckpt = tmp / "net_best_epoch_state.pt"
    torch.save({"mod." + k: t for k, t in ref.state_dict().items()}, ckpt)
    return tmp, ckpt


def test_script_end_to_end_writes_every_figure(setup, capsys):
    tmp, ckpt = setup
    out = tmp / "maps"
    res = call(_script(), ["--network", NETWORK, "--data-config", DATA_CONFIG, "--checkpoint", ckpt,
                           "--data", str(tmp / "data/*.root"), "--jets", "4", "--out", out, "--subjets", "auto", *TINY],
               capsys)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    expected = {"binary_stats_by_class.png", "binary_stats_heads.png", "max_weight_hist.png", "attention_vs_delta_r.png",
                "partner_types.png", "subjets.png", "u_vs_qk.png", "cls_attention_vs_pt_rank.png"}
    for cls, j in (("Hbb", 0), ("Tbqq", 4), ("QCD", 8)):
        expected |= {f"heatmap_{cls}_jet{j}.png", f"cls_heatmap_{cls}_jet{j}.png", f"etaphi_{cls}_jet{j}.png"}
    assert set(summary["figures"]) == expected
    assert {p.name for p in out.iterdir()} == expected | {"summary.json"}
    printed = {Path(line).name for line in res.stdout.splitlines() if line.startswith(str(out))}
    assert printed == expected | {"summary.json"}
    assert summary["jets_per_class"] == {"QCD": 4, "Hbb": 4, "Tbqq": 4}
    b = summary["binary"]["Hbb"]["blocks.1"]
    assert set(b) == {"full", "qk_only", "u_only", "subjets"} and b["full"]["all"]["max_weight"]["n_jets"] == 4
    assert 0 < b["full"]["all"]["max_weight"]["mean"] <= 1 and not summary["not_applicable"]


@pytest.mark.parametrize("case,needle", [
    ("missing_checkpoint", "does not exist"),
    ("mismatched_checkpoint", "does not match"),
    ("no_files", "matches no file"),
    ("unknown_class", "unknown class 'Zbb'"),
    ("zero_jets", "--jets"),
    ("unwritable_out", "not a directory"),
    ("mamba", "not applicable"),
])
def test_bad_inputs_one_line_exit_2_nothing_written(setup, capsys, tmp_path, case, needle):
    tmp, ckpt = setup
    out = tmp_path / "out"
    argv = ["--network", NETWORK, "--data-config", DATA_CONFIG, "--checkpoint", ckpt, "--data", str(tmp / "data/*.root"),
            "--jets", "2", "--out", out, *TINY]
    if case == "missing_checkpoint":
        argv[argv.index("--checkpoint") + 1] = tmp_path / "nope.pt"
    elif case == "mismatched_checkpoint":
        argv += ["-o", "num_heads", "4"]
    elif case == "no_files":
        argv[argv.index("--data") + 1] = str(tmp_path / "none/*.root")
    elif case == "unknown_class":
        argv += ["--classes", "QCD,Zbb"]
    elif case == "zero_jets":
        argv[argv.index("--jets") + 1] = "0"
    elif case == "unwritable_out":
        (tmp_path / "file").write_text("x")
        argv[argv.index("--out") + 1] = tmp_path / "file" / "out"
    elif case == "mamba":
        argv = [a for a in argv if a != ckpt and a != "--checkpoint"] + ["-o", "mixer", "mamba", "-o", "ordering", "pt"]
    res = call(_script(), argv, capsys)
    assert_user_error(res, needle)
    assert not out.exists() and not (tmp_path / "file" / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["file"] if case == "unwritable_out" else [])


def test_failure_during_the_work_keeps_the_previous_output(setup, capsys, tmp_path):
    """A corrupt file found while reading the jets (inside the staged --out): one line, exit 2, the earlier
    --out untouched and no staging folder left behind."""
    tmp, ckpt = setup
    out = tmp_path / "maps"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "HToBB_000.root").write_bytes(b"not a ROOT file")
    res = call(_script(), ["--network", NETWORK, "--data-config", DATA_CONFIG, "--checkpoint", ckpt,
                           "--data", str(data / "*.root"), "--jets", "2", "--out", out, *TINY], capsys)
    assert_user_error(res, "cannot read", "HToBB_000.root")
    assert [p.name for p in out.iterdir()] == ["summary.json"] and (out / "summary.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "maps"]
