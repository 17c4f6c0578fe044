"""partx.train.tracking: weaver-signature train / evaluate functions on a fake weaver loader (no files)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from partx.train.tracking import tracking_network


pytestmark = pytest.mark.usefixtures("one_torch_thread")


L = 64  # padded length (the data files pad every event to a fixed length)


def fake_config():
    dicts = {"hit_points": ["p"] * 6, "hit_features": ["f"] * 15, "hit_truth": ["t"] * 5, "hit_mask": ["m"]}
    return SimpleNamespace(
        input_names=list(dicts), input_dicts=dicts, input_shapes={k: (-1, len(v), L) for k, v in dicts.items()}
    )


def fake_batches(n_batches=3, B=2, seed=0):
    """weaver-like (X, y, Z) batches: channel-first inputs, real hits first, zero padding."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_batches):
        X = {k: torch.zeros(B, c, L) for k, c in (("hit_points", 6), ("hit_features", 15), ("hit_truth", 5), ("hit_mask", 1))}
        for b in range(B):
            n_p, hits = 6, 6 + (b + i) % 2
            n = n_p * hits
            pid = torch.arange(1, n_p + 1).repeat_interleave(hits)
            centre = torch.randn(n_p, 6, generator=g)
            pts = centre[pid - 1] + 0.05 * torch.randn(n, 6, generator=g)
            X["hit_points"][b, :, :n] = pts.T
            X["hit_features"][b, :6, :n] = pts.T
            X["hit_truth"][b, 0, :n] = pid.float()
            X["hit_truth"][b, 1, :n] = 2.0
            X["hit_truth"][b, 2, :n] = 1.0
            X["hit_truth"][b, 3, :n] = pts[:, 0]
            X["hit_mask"][b, 0, :n] = 1.0
        out.append((X, {}, {"event_id": np.arange(B) + B * i}))
    return out


def test_train_and_evaluate_through_weaver_hooks(tmp_path):
    torch.manual_seed(0)
    get_model, get_loss, get_train_fn, get_evaluate_fn = tracking_network(
        "mamba_b", h_dim=16, n_layers=2, head_hidden=32, num_regions=4, dropout=0.0
    )
    cfg = fake_config()
    opts = {"loss_variant": "hept_radius", "dbscan_eps": 0.3}
    model, info = get_model(cfg, **opts)
    assert info["input_names"] == ["hit_points", "hit_features", "hit_mask"]
    assert model.encoder.cfg.in_dim == 15 and model.encoder.cfg.coords_dim == 6
    assert get_loss(cfg, **opts).variant == "hept_radius"
    train, evaluate = get_train_fn(cfg, **opts), get_evaluate_fn(cfg, **opts)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = fake_batches()
    first = train(model, None, opt, None, loader, "cpu", epoch=0)
    for epoch in range(1, 6):
        last = train(model, None, opt, None, loader, "cpu", epoch=epoch)
    assert last < first
    acc = evaluate(model, loader, "cpu", epoch=0)
    assert 0.0 <= acc <= 1.0
    out = tmp_path / "pred" / "test.parquet"
    metric, scores, labels, observers = evaluate(
        model, loader, "cpu", epoch=None, for_training=False, extra_args={"args": SimpleNamespace(predict_output=str(out))}
    )
    assert metric == acc
    assert len(scores) == 6 and len(scores[0]) == 36 and len(scores[1]) == 42  # per event, padding cropped
    assert len(scores[0][0]) == 8  # embedding E = h_dim / 2
    assert observers["event_id"].tolist() == list(range(6))
    m = json.loads((tmp_path / "pred" / "test.metrics.json").read_text())
    for key in ("accuracy@0.9", "precision@0.9", "recall@0.9", "dm_efficiency", "lhc_efficiency", "dm_fake_rate", "trackml_score_unit_weights"):
        assert key in m
    assert (tmp_path / "pred" / "test_eff_pt.png").exists() and (tmp_path / "pred" / "test_eff_eta.png").exists()


def test_unknown_model_option_raises():
    get_model = tracking_network("hept")[0]
    from partx.train.tracking import UnknownTrackingOption

    with pytest.raises(UnknownTrackingOption, match="'not_an_option'.*valid: .*block_size"):  # a ValueError
        get_model(fake_config(), not_an_option=1)


def test_non_finite_loss_stops_training():
    from partx.losses.finite import NonFiniteLossError

    get_model, _, get_train_fn, _ = tracking_network("mamba", h_dim=16, n_layers=1, head_hidden=32)
    model, _ = get_model(fake_config())
    batches = fake_batches(n_batches=1)
    batches[0][0]["hit_features"][0, 0, 0] = float("nan")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLossError, match="step 1 of epoch 0"):
        get_train_fn(fake_config())(model, None, opt, None, batches, "cpu", epoch=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_seed_option_repeats_the_initialisation():
    """``-o seed N``: the same N gives the same weights and LSH projections, another N other ones."""
    get_model = tracking_network("hept", h_dim=16, n_layers=1, head_hidden=32)[0]

    def state(seed):
        return get_model(fake_config(), seed=seed)[0].state_dict()

    a, b, c = state(3), state(3), state(4)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    alpha = [k for k in a if k.endswith("alpha")]  # HEPT's frozen LSH projections follow the seed too
    assert alpha and not any(torch.equal(a[k], c[k]) for k in alpha)
    assert not torch.equal(a["encoder.encoder.0.weight"], c["encoder.encoder.0.weight"])


def test_dbscan_eps_tuned_on_validation_of_the_best_epoch(tmp_path):
    """Without ``-o dbscan_eps`` the validation tunes the radius and records it for the best epoch only (weaver's
    rule: strictly higher metric); the test uses it. With the option given, the option wins and nothing is tuned."""
    from partx.train import tracking as T

    torch.manual_seed(0)
    get_model, _, get_train_fn, get_evaluate_fn = tracking_network("hept", h_dim=16, n_layers=1, head_hidden=32)
    cfg = fake_config()
    model = get_model(cfg)[0]
    loader = fake_batches()
    train = get_train_fn(cfg)
    for epoch in range(3):
        train(model, None, torch.optim.Adam(model.parameters(), lr=3e-3), None, loader, "cpu", epoch=epoch)
    args = SimpleNamespace(model_prefix=str(tmp_path / "net"), predict_output=str(tmp_path / "pred" / "p.parquet"))
    evaluate = get_evaluate_fn(cfg)
    acc = evaluate(model, loader, "cpu", epoch=0, extra_args={"args": args})
    rec = json.loads((tmp_path / "net_dbscan_eps.json").read_text())
    assert rec["epoch"] == 0 and rec["val_metric"] == acc and rec["eps"] in T.EPS_GRID
    assert rec["dm_efficiency_by_eps"][str(rec["eps"])] == max(rec["dm_efficiency_by_eps"].values())
    assert T.record_tuned_eps(args, 1, acc, [{}]) is None  # not better: the best epoch's radius stays
    assert json.loads((tmp_path / "net_dbscan_eps.json").read_text())["epoch"] == 0
    evaluate(model, loader, "cpu", epoch=None, for_training=False, extra_args={"args": args})
    m = json.loads((tmp_path / "pred" / "p.metrics.json").read_text())
    assert m["dbscan_eps"] == rec["eps"] and m["dbscan_eps_from"] == "validation"
    get_evaluate_fn(cfg, dbscan_eps=0.37)(model, loader, "cpu", epoch=None, for_training=False, extra_args={"args": args})
    m = json.loads((tmp_path / "pred" / "p.metrics.json").read_text())
    assert m["dbscan_eps"] == 0.37 and m["dbscan_eps_from"] == "option"
