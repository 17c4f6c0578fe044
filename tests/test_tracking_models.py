"""Tracking encoders (partx.models.tracking): sizes, padding, batch isolation, training, HEPT equivalence."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from partx.losses.infonce import batched_info_nce, knn_point_pairs
from partx.models.tracking import MODELS, SIZES, TrackingEncoder, build_tracking_model, count_parameters, tracking_config
from partx.models.tracking.hept_checkpoint import hept_config_from_state_dict, hept_from_state_dict, hept_key
from partx.models.tracking.ordering import LSHOrdering, lampa_order, stored_order

FIXTURE = Path(__file__).parent / "fixtures" / "hept_small" / "hept_small.npz"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


PARAMS = {
    "hept": (326_436, 613_896, 1_011_528),
    "mamba": (323_832, 610_968, 1_008_416),
    "mamba_a": (167_984, 355_352, 510_504),
    "mamba_b": (323_832, 610_968, 1_008_416),
}
PAPER = {"hept": (0.33e6, 0.61e6, 1.01e6), "mamba_a": (0.17e6, 0.35e6, 0.50e6), "mamba_b": (0.32e6, 0.61e6, 0.99e6)}


@pytest.mark.parametrize("model", MODELS)
def test_parameter_counts(model):
    counts = tuple(count_parameters(build_tracking_model(model, s)) for s in SIZES)
    assert counts == PARAMS[model]
    for n, ref in zip(counts, PAPER.get(model, counts)):
        assert abs(n - ref) / ref < 0.03


def small(model, **kw):
    base = dict(in_dim=5, coords_dim=4, h_dim=16, n_layers=2, block_size=8, num_regions=4, num_heads=2, head_hidden=32)
    base.update(kw)
    return TrackingEncoder(tracking_config(model, "S", **base)).eval()


VARIANTS = [("hept", {}), ("mamba", {}), ("mamba_a", {}), ("mamba_a", {"attn_layers": "all"}), ("mamba_b", {}), ("mamba_b", {"ordering": "lampa"})]


def event_batch(B=2, N=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, 5, generator=g)
    coords = torch.randn(B, N, 4, generator=g)
    return x, coords


@pytest.mark.parametrize("model,kw", VARIANTS)
def test_padding_invariant_and_events_isolated(model, kw):
    torch.manual_seed(0)
    net = small(model, **kw)
    x, c = event_batch()
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 27:] = False
    with torch.no_grad():
        y = net(x, c, mask)
        assert y.shape == (2, 40, 8) and (y[1, 27:] == 0).all()
        # more padding, with garbage in it
        pad = 13
        x2 = torch.cat([x, 50 * torch.randn(2, pad, 5)], 1)
        c2 = torch.cat([c, 50 * torch.randn(2, pad, 4)], 1)
        x2[1, 27:40] = 99.0
        m2 = torch.cat([mask, torch.zeros(2, pad, dtype=torch.bool)], 1)
        y2 = net(x2, c2, m2)
        torch.testing.assert_close(y2[:, :40][mask], y[mask], atol=1e-5, rtol=1e-5)
        # perturb event 1: event 0 unchanged
        x3, c3 = x.clone(), c.clone()
        x3[1] = torch.randn(40, 5)
        c3[1] = torch.randn(40, 4)
        y3 = net(x3, c3, mask)
        torch.testing.assert_close(y3[0], y[0], atol=1e-6, rtol=1e-6)
        # a lone event gives the same as inside the batch
        y4 = net(x[1:, :27], c[1:, :27], mask[1:, :27])
        torch.testing.assert_close(y4[0], y[1, :27], atol=1e-5, rtol=1e-5)


def clustering_batch(B=2, n_particles=6, hits=6, seed=0):
    """Toy events: hits of a particle share a centre in coordinate space; features = noisy coordinates."""
    g = torch.Generator().manual_seed(seed)
    pid = torch.arange(1, n_particles + 1).repeat_interleave(hits).expand(B, -1).clone()
    centres = torch.randn(B, n_particles, 4, generator=g) * 2
    coords = centres.repeat_interleave(hits, dim=1) + 0.3 * torch.randn(B, n_particles * hits, 4, generator=g)
    x = torch.cat([coords, torch.randn(B, n_particles * hits, 1, generator=g)], -1)
    perm = torch.randperm(n_particles * hits, generator=g)
    return x[:, perm], coords[:, perm], pid[:, perm]


@pytest.mark.parametrize("model,kw", [("hept", {}), ("mamba", {}), ("mamba_a", {}), ("mamba_b", {})])
def test_trains_on_toy_clustering(model, kw):
    torch.manual_seed(0)
    net = small(model, dropout=0.0, **kw).train()
    x, c, pid = clustering_batch()
    mask = torch.ones(pid.shape, dtype=torch.bool)
    pairs = [torch.from_numpy(knn_point_pairs(c[b, :, :2].numpy(), k=12)) for b in range(2)]
    rec, pt = torch.ones_like(pid), torch.full(pid.shape, 2.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = batched_info_nce(net(x, c, mask), pairs, pid, rec, pt, mask, variant="lampa_knn")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_orderings():
    g = torch.Generator().manual_seed(0)
    coords = torch.randn(2, 300, 4, generator=g)
    mask = torch.ones(2, 300, dtype=torch.bool)
    mask[1, ::3] = False
    assert torch.equal(stored_order(mask)[0], torch.arange(300))
    perms = LSHOrdering(4, n_tables=3, n_and=2, bucket_width=0.5, num_regions=9)(coords, mask)
    assert len(perms) == 3  # OR: one order per table
    for p in perms:
        assert torch.equal(mask.gather(1, p)[1], torch.arange(300) < 200)  # real hits first
    # locality: consecutive hits of an LSH order are much closer than of the stored order
    step = lambda p: (coords[0].gather(0, p[0, :, None].expand(-1, 4)).diff(dim=0).norm(dim=-1)).mean()  # noqa: E731
    assert step(perms[0][:1]) < 0.6 * step(stored_order(mask)[:1])
    # Lampa's key: sum_i 2^i (a_i . c), stable on a norm pre-sort
    a = torch.randn(4, 3, generator=g)
    p = lampa_order(coords, torch.ones(2, 300, dtype=torch.bool), a)
    key = (coords @ a * torch.tensor([1.0, 2.0, 4.0])).sum(-1)
    assert (key.gather(1, p).diff(dim=1) >= 0).all()


def load_fixture():
    f = np.load(FIXTURE)
    sd = {k[3:]: torch.from_numpy(f[k]) for k in f.files if k.startswith("sd/")}
    return f, sd, ast.literal_eval(str(f["config"]))


def test_hept_key_map_covers_hept_layout():
    f, sd, cfg = load_fixture()
    net = TrackingEncoder(hept_config_from_state_dict(sd, block_size=cfg["block_size"]))
    mapped = {hept_key(k) for k in sd}
    assert mapped == set(net.state_dict())  # every HEPT tensor has a home and nothing is left unset
    assert net.cfg.num_heads == cfg["num_heads"] and net.cfg.n_layers == cfg["n_layers"] and net.cfg.coords_dim == cfg["coords_dim"]
    with pytest.raises(KeyError):
        hept_key("attns.0.attn.something_else")


def test_hept_forward_equals_hept_fixture():
    """Output of HEPT's own code (example/transformer.py) on the fixture input, reproduced to 1e-5."""
    f, sd, cfg = load_fixture()
    net = hept_from_state_dict(sd, block_size=cfg["block_size"]).eval()
    x = torch.from_numpy(f["x"])[None]
    c = torch.from_numpy(f["coords"])[None]
    with torch.no_grad():
        y = net(x, c, torch.ones(1, x.shape[1], dtype=torch.bool))[0]
    np.testing.assert_allclose(y.numpy(), f["y"], atol=1e-5, rtol=0)
    # batched with padding and a second event: the first event's output is unchanged
    x2 = torch.cat([torch.cat([x, torch.zeros(1, 20, x.shape[2])], 1), torch.randn(1, x.shape[1] + 20, x.shape[2])])
    c2 = torch.cat([torch.cat([c, torch.zeros(1, 20, c.shape[2])], 1), torch.randn(1, x.shape[1] + 20, c.shape[2])])
    m2 = torch.ones(2, x.shape[1] + 20, dtype=torch.bool)
    m2[0, x.shape[1]:] = False
    with torch.no_grad():
        y2 = net(x2, c2, m2)[0, : x.shape[1]]
    np.testing.assert_allclose(y2.numpy(), f["y"], atol=1e-5, rtol=0)
