"""partx.models.pileup + partx.train.pileup: the tracking encoders with a pid embedding and a per-particle
logit; padding invariance; the weaver hooks on in-memory batches made from tiny contract-format events."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from partx.models.pileup import PileupClassifier, build_pileup_model, pileup_config
from partx.models.tracking import MODELS, count_parameters

sys.path.insert(0, str(Path(__file__).parent))
import pileup_tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = dict(h_dim=16, n_layers=2, head_hidden=16, block_size=16, num_heads=2)


def _inputs(n, pad, seed=0):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(1, n, 7, generator=g)
    feats = torch.cat([real, torch.full((1, pad, 7), 123.0)], 1)  # garbage in the padding must not matter
    pid = torch.cat([torch.randint(0, 7, (1, n), generator=g).float(), torch.full((1, pad), 9.0)], 1)
    coords = torch.cat([feats[..., :2], feats[..., :2]], -1)
    coords[:, n:] = -7.0
    mask = torch.arange(n + pad)[None] < n
    return feats, pid, coords, mask


@pytest.mark.parametrize("model", MODELS)
def test_padding_invariance_and_pid_embedding_used(model):
    torch.manual_seed(0)
    net = build_pileup_model(model, **SMALL).eval()
    n = 40
    with torch.no_grad():
        a = net(*_inputs(n, 10))
        b = net(*_inputs(n, 75))
        assert a.shape == (1, 50) and b.shape == (1, 115)
        torch.testing.assert_close(a[:, :n], b[:, :n], rtol=1e-5, atol=1e-5)
        assert (a[:, n:] == 0).all() and (b[:, n:] == 0).all()
        feats, pid, coords, mask = _inputs(n, 10)
        pid[0, 3] = (pid[0, 3] + 1) % 7
        assert not torch.allclose(net(feats, pid, coords, mask)[0, 3], a[0, 3])  # the embedding reaches the output


def test_paper_sizes():
    """Paper App. A.2: Mamba-a 24 x 8, Mamba-b 48 x 8; HEPT's pileup yaml: 24 x 4, block 100, 140 regions."""
    shapes = {m: (c.h_dim, c.n_layers) for m in MODELS for c in [pileup_config(m)]}
    assert shapes == {"hept": (24, 4), "mamba": (48, 8), "mamba_a": (24, 8), "mamba_b": (48, 8)}
    cfg = pileup_config("hept")
    assert (cfg.in_dim, cfg.coords_dim, cfg.block_size, cfg.num_regions, cfg.num_heads) == (17, 4, 100, 140.0, 8)
    net = PileupClassifier(cfg)
    assert net.pid_embed.weight.shape == (7, 10) and net.out_proj.weight.shape == (1, 12)
    assert pileup_config("mamba_b", "M").n_layers == 10  # tracking sizes stay available
    with pytest.raises(ValueError, match="unknown size"):
        pileup_config("hept", "XL")
    # parameter counts quoted in docs/pileup_models.md
    counts = {m: count_parameters(build_pileup_model(m)) for m in MODELS}
    assert counts == {"hept": 311207, "mamba": 532247, "mamba_a": 309663, "mamba_b": 532247}


# ---- weaver hooks on in-memory batches --------------------------------------------------------------------

L = 300


def fake_config():
    dicts = {"part_features": ["f"] * 7, "part_pid": ["p"], "part_coords": ["c"] * 4, "part_mask": ["m"], "part_truth": ["t"] * 2}
    return SimpleNamespace(input_names=list(dicts), input_dicts=dicts, input_shapes={k: (-1, len(v), L) for k, v in dicts.items()},
                           label_names=("label_lv",))


def fake_batches(seeds, B=2):
    """weaver-like (X, y, Z) batches of pileup_tiny events: channel-first inputs, zero padding to L."""
    out = []
    for i in range(0, len(seeds), B):
        evs = [pileup_tiny.make_event(s) for s in seeds[i:i + B]]
        X = {k: torch.zeros(len(evs), len(v), L) for k, v in fake_config().input_dicts.items()}
        for b, ev in enumerate(evs):
            n = len(ev["pt"])
            f = np.stack([ev[k] for k in ("eta", "phi", "px", "py", "pt", "e", "rapidity")])
            X["part_features"][b, :, :n] = torch.from_numpy(f)
            X["part_pid"][b, 0, :n] = torch.from_numpy(ev["pid_class"].astype(np.float32))
            X["part_coords"][b, :, :n] = torch.from_numpy(f[[0, 1, 0, 1]])
            X["part_mask"][b, 0, :n] = 1
            X["part_truth"][b, :, :n] = torch.from_numpy(np.stack([ev["is_lv"], ev["is_scored"]]).astype(np.float32))
        out.append((X, {}, {"event_id": np.array(seeds[i:i + B])}))
    return out


def test_weaver_hooks_train_evaluate_and_write(tmp_path):
    from partx.train.pileup import pileup_network

    get_model, get_loss, get_train_fn, get_evaluate_fn = pileup_network("mamba_b")
    opts = dict(size="S", h_dim=16, n_layers=2, head_hidden=32)
    torch.manual_seed(0)
    model, info = get_model(fake_config(), **opts)
    assert info["input_names"] == ["part_features", "part_pid", "part_coords", "part_mask"]
    loss = get_loss(fake_config(), **opts)
    assert (loss.gamma, loss.alpha) == (2.0, 0.25)
    train, evaluate = get_train_fn(fake_config(), **opts), get_evaluate_fn(fake_config(), **opts)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    val = fake_batches([100, 101, 102, 103])
    before = evaluate(model, val, "cpu", 0, loss_func=loss)
    for epoch in range(4):
        train(model, loss, opt, None, fake_batches(list(range(8))), "cpu", epoch)
    after = evaluate(model, val, "cpu", 4, loss_func=loss)
    assert after > before + 0.1 and after > 0.7, (before, after)
    args = SimpleNamespace(predict_output="pred.parquet", model_prefix=str(tmp_path / "run" / "net"))
    main, scores, labels, obs = evaluate(model, val, "cpu", 4, for_training=False, extra_args={"args": args})
    assert main == pytest.approx(after)
    assert [len(s) for s in scores.tolist()] == [len(pileup_tiny.make_event(s)["pt"]) for s in range(100, 104)]
    assert set(labels) == {"is_lv", "is_scored"} and list(obs["event_id"]) == [100, 101, 102, 103]
    out = tmp_path / "run" / "predict_output"
    metrics = json.loads((out / "pred.metrics.json").read_text())
    for key in ("accuracy", "roc_auc", "average_precision", "roc_auc_event_mean", "average_precision_event_mean"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["jets"]["methods"]) == {"none", "chs", "puppi", "model"} and (out / "pred_jets.png").is_file()


def test_unknown_option_is_one_line():
    from partx.train.pileup import UnknownPileupOption, pileup_network

    with pytest.raises(UnknownPileupOption, match=r"'not_an_option'.*valid: .*focal_gamma"):
        pileup_network("hept")[0](fake_config(), not_an_option=1)
