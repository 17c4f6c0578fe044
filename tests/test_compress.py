"""partx.compress: the SVD-parameterised Linear reproduces the original at full rank, equals the truncated SVD at
rank r, learns to drop directions under the rank penalty, and a compressed ParT saves, loads and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from partx.compress import (CompressError, LowRankLinear, SVDLinear, load_compressed, materialise, rank_penalty,
                            save_compressed, svd_layers, to_svd)

DATA_CONFIG = str(Path(__file__).resolve().parents[1] / "data/JetClass/JetClass_full.yaml")


def test_full_rank_reproduces_linear():
    torch.manual_seed(0)
    lin = nn.Linear(48, 80).double()  # float64: the factorisation itself is exact to ~1e-15
    x = torch.randn(5, 7, 48, dtype=torch.float64)
    assert (SVDLinear(lin, soft=False)(x) - lin(x)).abs().max() <= 1e-6
    # full-rank materialisation of a layer where two factors would cost more stays one dense Linear
    dense = SVDLinear(lin, soft=False).materialise(rank=48)
    assert isinstance(dense, nn.Linear) and (dense(x) - lin(x)).abs().max() <= 1e-6
    # float32 (what models use): two float32 products instead of one, errors ~ a few float32 ulps of |y| ~ 1
    lin32 = nn.Linear(48, 80)
    x32 = x.float()
    assert (SVDLinear(lin32, soft=False)(x32) - lin32(x32)).abs().max() <= 1e-5


@pytest.mark.parametrize("rank", [1, 10, 25])
def test_rank_r_equals_truncated_svd(rank):
    torch.manual_seed(1)
    lin = nn.Linear(64, 96).double()
    low = SVDLinear(lin, soft=False).materialise(rank=rank)
    assert isinstance(low, LowRankLinear) and low.rank == rank
    u, s, vh = np.linalg.svd(lin.weight.detach().numpy(), full_matrices=False)  # reference: numpy's SVD
    w_r = (u[:, :rank] * s[:rank]) @ vh[:rank]
    x = torch.randn(9, 64, dtype=torch.float64)
    ref = x.numpy() @ w_r.T + lin.bias.detach().numpy()
    np.testing.assert_allclose(low(x).detach().numpy(), ref, atol=1e-10)
    assert sum(p.numel() for p in low.parameters()) == rank * (64 + 96) + 96


def test_soft_gate_and_threshold():
    torch.manual_seed(2)
    lin = nn.Linear(32, 32)
    m = SVDLinear(lin)  # threshold starts at 1e-3 s_1: every direction kept, the layer ~ the original
    assert m.hard_rank() == 32
    # the gate scales direction i by g_i = sigmoid((s_i - tau) / (T s_1)); s (1 - g(s)) peaks at ~0.28 T s_1 for
    # tau ~ 0, so the spectral-norm change of W is at most that (T = 0.02)
    with torch.no_grad():
        w_eff = (m.U * (m.S * m.gate())) @ m.Vh
        assert torch.linalg.matrix_norm(w_eff - lin.weight, 2) <= 0.3 * 0.02 * m.s_max
        x = torch.randn(4, 32)
        assert torch.allclose(m(x), x @ w_eff.T + lin.bias, atol=1e-5)
    with torch.no_grad():  # threshold between s_10 and s_11 -> exactly 10 directions survive
        tau = (m.S[9] + m.S[10]) / 2
        m.theta.fill_(torch.logit(tau / m.s_max).item())
    assert m.hard_rank() == 10
    g = m.gate()
    assert (g[:10] > 0.5).all() and (g[10:] < 0.5).all()
    assert 9 < m.soft_rank().item() < 11
    # the gate is differentiable in the threshold: the penalty pushes theta up (fewer directions)
    m.theta.grad = None
    m.soft_rank().backward()
    assert m.theta.grad < 0


def test_penalty_training_lowers_rank():
    """A few hundred steps of penalty alone on a redundant layer: soft rank falls, materialised model shrinks."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 8))
    names = to_svd(model, min_features=8)
    assert names == ["0", "2"]
    start = rank_penalty(model).item()
    thetas = [m.theta for m in svd_layers(model).values()]
    opt = torch.optim.Adam(thetas, lr=5e-2)
    for _ in range(200):
        opt.zero_grad()
        rank_penalty(model).backward()
        opt.step()
    assert rank_penalty(model).item() < 0.5 * start
    info = materialise(model)
    assert info["0"]["rank"] < 64 and not info["0"]["dense"]
    assert isinstance(model[0], LowRankLinear)


def test_compressed_part_saves_loads_and_runs(tmp_path):
    from weaver.utils.data.config import DataConfig

    from partx.perf import inputs, models

    dc = DataConfig.load(DATA_CONFIG, load_observers=False, load_reweight_info=False)
    spec = models.resolve_model("ParT", overrides=dict(num_layers=1, embed_dims=[32, 32], pair_embed_dims=[8],
                                                       num_heads=2, num_cls_layers=1, for_inference=True))
    torch.manual_seed(0)
    fp32 = models.build_model(spec, dc, 16)
    model = __import__("copy").deepcopy(fp32)
    names = to_svd(model)
    assert "mod.blocks.0.fc1" in names and all("cls_blocks.0.attn.in_proj" not in n for n in names)
    for m in svd_layers(model).values():  # keep 8 of 32 directions everywhere
        with torch.no_grad():
            m.theta.fill_(torch.logit((m.S[7] + m.S[8]) / 2 / m.s_max).item())
    layers = materialise(model)
    assert all(v["rank"] == 8 for v in layers.values() if not v["dense"])
    path = tmp_path / "low.pt"
    save_compressed(path, model, layers)
    comp = load_compressed(path, fp32)
    x = inputs.as_forward_args(inputs.synthetic_inputs(dc, 16, 3, seed=1), dc.input_names)
    with torch.no_grad():
        assert torch.equal(comp.model(*x), model.eval()(*x))
    assert sum(p.numel() for p in comp.model.parameters()) < sum(p.numel() for p in fp32.parameters())
    assert "factorised" in comp.summary()
    # bad inputs: not a compressed file, a file for another model
    torch.save({"x": 1}, tmp_path / "bad.pt")
    with pytest.raises(CompressError, match="not a partx-lowrank"):
        load_compressed(tmp_path / "bad.pt", fp32)
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CompressError, match="not a readable"):
        load_compressed(tmp_path / "junk.pt", fp32)
    with pytest.raises(CompressError, match="does not exist|does not match"):
        load_compressed(path, nn.Sequential(nn.Linear(3, 3)))


def test_cli_bad_inputs(tmp_path, capsys):
    from partx.compress.__main__ import main

    assert main(["ParT", str(tmp_path / "missing.pt"), "--train", "x", "--out", str(tmp_path / "o.pt")]) == 2
    assert "ERROR: checkpoint not found" in capsys.readouterr().err
    ck = tmp_path / "c.pt"
    ck.write_bytes(b"")
    assert main(["ParT", str(ck), "--train", "x", "--out", str(tmp_path / "o.pt"), "--penalty", "-1"]) == 2
    assert "--penalty must be >= 0" in capsys.readouterr().err
