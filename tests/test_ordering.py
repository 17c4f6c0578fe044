"""Particle orderings (partx.nn.ordering)."""

import math

import pytest
import torch

from partx.nn.ordering import ORDERINGS, hilbert_index, inverse_permutation, jet_relative_eta_phi, particle_order


def make_jets(B=4, N=60, n_real=(60, 41, 17, 1), seed=0):
    """Toy jets around eta 0.5, phi 1.0, particles spread ~0.3 in eta-phi, pT-ordered, padding after."""
    g = torch.Generator().manual_seed(seed)
    eta = 0.5 + 0.3 * torch.randn(B, N, generator=g)
    phi = 1.0 + 0.3 * torch.randn(B, N, generator=g)
    pt = torch.rand(B, N, generator=g).sort(dim=1, descending=True).values * 100 + 1
    px, py, pz = pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)
    v = torch.stack([px, py, pz, pt * torch.cosh(eta)], dim=1)
    mask = torch.arange(N)[None] < torch.tensor(n_real)[:, None]
    return v * mask[:, None], mask


@pytest.mark.parametrize("kind", ORDERINGS)
def test_valid_permutation_with_padding_last(kind):
    v, mask = make_jets()
    perm = particle_order(kind, v, mask)
    assert perm.shape == mask.shape and perm.dtype == torch.long
    assert (perm.sort(dim=1).values == torch.arange(mask.shape[1])).all()
    assert (mask.gather(1, perm) == mask).all()  # n real first, then padding (mask is a prefix)


@pytest.mark.parametrize("kind", ORDERINGS)
def test_interleaved_padding_goes_last(kind):
    v, mask = make_jets()
    mask2 = mask.clone()
    mask2[0, ::3] = False
    perm = particle_order(kind, v * mask2[:, None], mask2)
    sorted_mask = mask2.gather(1, perm)
    n = mask2.sum(1, keepdim=True)
    assert (sorted_mask == (torch.arange(mask.shape[1])[None] < n)).all()


@pytest.mark.parametrize("kind", ORDERINGS)
def test_deterministic(kind):
    v, mask = make_jets()
    assert torch.equal(particle_order(kind, v, mask), particle_order(kind, v.clone(), mask.clone()))


def test_none_is_identity_and_pt_is_descending():
    v, mask = make_jets()
    assert torch.equal(particle_order("none", v, mask), torch.arange(mask.shape[1]).expand_as(mask))
    shuffle = torch.randperm(mask.shape[1])
    v_s, m_s = v[:, :, shuffle], mask[:, shuffle]
    perm = particle_order("pt", v_s, m_s)
    pt = torch.hypot(v_s[:, 0], v_s[:, 1]).gather(1, perm)
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        assert (pt[b, : n - 1] >= pt[b, 1:n]).all()


def test_inverse_permutation_round_trip():
    v, mask = make_jets()
    perm = particle_order("sfc", v, mask)
    inv = inverse_permutation(perm)
    x = torch.randn(*mask.shape)
    assert torch.equal(x.gather(1, perm).gather(1, inv), x)


def test_hilbert_curve_visits_neighbouring_cells():
    order = 3
    xs, ys = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    d = hilbert_index(xs.flatten(), ys.flatten(), order)
    assert torch.equal(d.sort().values, torch.arange(64))  # a bijection onto 0..63
    walk = torch.stack([xs.flatten(), ys.flatten()], 1)[d.argsort()]
    assert ((walk[1:] - walk[:-1]).abs().sum(1) == 1).all()  # each step moves to an adjacent cell


def test_relative_eta_phi_wraps_phi():
    pt = torch.tensor([[10.0, 10.0]])
    phi = torch.tensor([[math.pi - 0.05, -math.pi + 0.05]])  # 0.1 apart across the +-pi seam
    v = torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), torch.zeros_like(pt), pt], 1)
    _, dphi = jet_relative_eta_phi(v, torch.ones(1, 2, dtype=torch.bool))
    assert dphi.abs().max() < 0.06


@pytest.mark.parametrize("kind", ["sfc", "lsh"])
def test_spatial_orders_are_local(kind):
    v, mask = make_jets(B=8, N=80, n_real=(80,) * 8, seed=1)
    deta, dphi = jet_relative_eta_phi(v, mask)

    def mean_step(perm):
        e, p = deta.gather(1, perm), dphi.gather(1, perm)
        return torch.hypot(e[:, 1:] - e[:, :-1], p[:, 1:] - p[:, :-1]).mean()

    random = torch.stack([torch.randperm(80, generator=torch.Generator().manual_seed(i)) for i in range(8)])
    assert mean_step(particle_order(kind, v, mask)) < 0.6 * mean_step(random)


def test_lsh_seed_changes_order():
    v, mask = make_jets()
    assert not torch.equal(particle_order("lsh", v, mask, seed=0), particle_order("lsh", v, mask, seed=1))


def test_unknown_ordering_names_the_choices():
    v, mask = make_jets()
    with pytest.raises(ValueError, match="choose one of: none, pt, sfc, lsh"):
        particle_order("random", v, mask)
