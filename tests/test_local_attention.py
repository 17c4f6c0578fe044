"""Local attention (partx/nn/local_attention.py): neighbours, sparse U = dense U, and equivalences."""

import math

import pytest
import torch
from weaver.nn.model.ParticleTransformer import PairEmbed, to_ptrapphim

from partx.models.part import ParticleTransformer
from partx.nn.local_attention import LocalPairs, knn_index, pair_embed_at
from partx.nn.mixers import build_mixer

from mixer_helpers import C, H, make_batch  # noqa: E402

SMALL = dict(input_dim=7, num_classes=5, embed_dims=[32, 32], pair_embed_dims=[16, 16], num_heads=4, num_layers=2,
             num_cls_layers=1, trim=False)


def jets(B=4, N=24, F=7, n_real=(24, 13, 5, 1), seed=0):
    """x (B, F, N), v (B, 4, N) massive 4-vectors spread over the whole phi range, mask (B, 1, N), zero padding."""
    g = torch.Generator().manual_seed(seed)
    pt = torch.rand(B, 1, N, generator=g) * 20 + 0.5
    eta = torch.randn(B, 1, N, generator=g)
    phi = (torch.rand(B, 1, N, generator=g) * 2 - 1) * math.pi
    m = torch.rand(B, 1, N, generator=g) * 0.3
    pz = pt * torch.sinh(eta)
    v = torch.cat([pt * phi.cos(), pt * phi.sin(), pz, (pt**2 + pz**2 + m**2).sqrt()], dim=1)
    mask = torch.zeros(B, 1, N)
    for b, n in enumerate(n_real):
        mask[b, :, :n] = 1
    return torch.randn(B, F, N, generator=g) * mask, v * mask, mask


def trained_pair_embed(**kw) -> PairEmbed:
    """weaver's PairEmbed in eval mode with non-trivial BatchNorm statistics and weights."""
    torch.manual_seed(0)
    pe = PairEmbed(kw.pop("lv_dim", 4), kw.pop("extra_dim", 0), (16, 16, H), **kw)
    with torch.no_grad():
        for mod in pe.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.normal_(1, 0.2)
                mod.bias.normal_()
    return pe.eval()


# PairEmbed variants: weaver's symmetric default (pp, 4 features), asymmetric features (pp, 6: boosted cos theta)
# with remove_self_pair, symmetric with remove_self_pair, extra pair features uu.
PAIR_CASES = {
    "pp4": dict(),
    "pp6_no_self": dict(lv_dim=6, remove_self_pair=True),
    "pp4_no_self": dict(remove_self_pair=True),
    "pp4_extra": dict(extra_dim=2),
}


@pytest.mark.parametrize("case", PAIR_CASES)
@pytest.mark.parametrize("k", [5, 40])
def test_sparse_u_equals_dense_u_on_the_evaluated_pairs(case, k):
    """Same PairEmbed weights: U at the (particle, neighbour) pairs equals weaver's dense U there, and both of
    weaver's paths (dense, sparse_eval) agree. Tolerance 1e-5 (abs + rel): the per-pair arithmetic is the same
    fp32 operations on the same inputs (symmetric features with the higher index first, as weaver's tril);
    only the batching of the 1x1 convolutions over the pairs differs, which moves a few ulp: observed max
    |difference| 0 (pp4) to 5e-7 (extra features) for |U| up to 5 (/tmp script in the localu report), i.e.
    ~1e-7 relative; 1e-5 leaves a 20x margin while a wrong pair (other particle, swapped asymmetric
    arguments, a missed self-pair rule) moves U by O(0.1-1)."""
    pe = trained_pair_embed(**PAIR_CASES[case])
    _, v, mask = jets()
    real = mask[:, 0].bool()
    uu = torch.randn(v.size(0), 2, v.size(2), v.size(2)) if case.endswith("extra") else None
    _, rap, phi = to_ptrapphim(v, return_mass=False, eps=None).unbind(1)
    index = knn_index(rap, phi, real, k)
    with torch.no_grad():
        sparse = pair_embed_at(pe, v, uu, index, real)  # (B, H, N, k)
        pair_real = (real[:, :, None] & real.gather(1, index.flatten(1)).view_as(index))[:, None].expand_as(sparse)
        assert (sparse[~pair_real] == 0).all()
        # weaver's sparse_eval path ignores remove_self_pair for asymmetric features (its dense path zeroes
        # them): partx follows the dense path, so the diagonal is compared with that one only
        off_diag = index != torch.arange(index.size(1))[:, None]
        for dense, where in ((pe._forward_dense(v, uu=uu, mask=mask), pair_real),
                             (pe._forward_sparse(v, uu=uu, mask=mask), pair_real & off_diag[:, None])):
            at = dense.gather(3, index[:, None].expand(-1, H, -1, -1))
            torch.testing.assert_close(sparse[where], at[where], atol=1e-5, rtol=1e-5)
    assert pair_real.sum() > 0 and (~pair_real).sum() > 0  # both kinds of pairs occurred


def test_neighbours_are_nearest_in_delta_r_with_phi_wrapped():
    eta = torch.tensor([[0.0, 0.0, 0.5, 0.0, 9.0]])
    phi = torch.tensor([[3.1, -3.1, 3.1, 1.0, 0.0]])  # 0 and 1 are 0.083 apart across the +-pi seam
    mask = torch.tensor([[True, True, True, True, False]])
    index = knn_index(eta, phi, mask, k=3)
    assert index[0, 0].tolist() == [0, 1, 2]
    assert index[0, 1].tolist() == [1, 0, 2]
    assert index[0, 3].tolist() == [3, 0, 2]  # dR to 0: 2.1, to 2: 2.16, to 1: 2.18 (wrapped)
    # brute force on random jets: the k smallest Delta R among real particles, padding never chosen
    g = torch.Generator().manual_seed(1)
    eta, phi = torch.randn(3, 30, generator=g), (torch.rand(3, 30, generator=g) * 2 - 1) * math.pi
    mask = torch.arange(30)[None] < torch.tensor([[30], [17], [9]])
    index = knn_index(eta, phi, mask, k=8)
    for b in range(3):
        n = int(mask[b].sum())
        for i in range(n):
            dphi = (phi[b, :n] - phi[b, i] + math.pi) % (2 * math.pi) - math.pi
            dr = ((eta[b, :n] - eta[b, i]) ** 2 + dphi**2).sqrt()
            assert index[b, i].tolist() == dr.argsort()[:8].tolist()


@pytest.mark.parametrize("attend", ["masked", "gather"])
def test_jet_with_fewer_than_k_particles_sees_all_and_only_its_particles(attend):
    """n < k: every real particle's first n neighbours are the n real particles (itself first), the remaining
    k - n slots are padded positions, masked in the attention (the output ignores what is there)."""
    _, v, mask = jets()
    real = mask[:, 0].bool()
    mixer = build_mixer("local", embed_dim=C, num_heads=H, k=8, attend=attend).eval()
    index = mixer.neighbours(v, real)
    for b, n in enumerate(real.sum(1).tolist()):
        for i in range(n):
            got = index[b, i].tolist()
            assert got[0] == i
            if n >= 8:
                assert max(got) < n  # padding never a neighbour of a real particle
            else:
                assert sorted(got[:n]) == list(range(n)) and min(got[n:]) >= n
    # the masked slots carry no weight: garbage in padded tokens and their U changes nothing
    x = torch.randn(4, 24, C) * real[..., None]
    bias = torch.randn(4, H, 24, 8)
    y = mixer(x, real, LocalPairs(index, bias))
    pad_slot = ~real.gather(1, index.flatten(1)).view_as(index)[:, None].expand_as(bias)
    x2 = torch.where(real[..., None], x, torch.randn_like(x) * 5)
    y2 = mixer(x2, real, LocalPairs(index, torch.where(pad_slot, bias + 7.0, bias)))
    torch.testing.assert_close(y2[real], y[real])


def _local_call(mixer, x, mask, bias):
    index = knn_index(x[..., 0], x[..., 1], mask, mixer.k)
    return mixer(x, mask, LocalPairs(index, bias.gather(3, index[:, None].expand(-1, H, -1, -1))))


@pytest.mark.parametrize("attend", ["masked", "gather"])
def test_pad_more_same_output_and_jets_independent_with_few_neighbours(attend):
    """The generic mixer semantics (tests/test_mixers.py) with k = 4 < N, where the neighbour choice matters."""
    torch.manual_seed(0)
    mixer = build_mixer("local", embed_dim=C, num_heads=H, k=4, attend=attend).eval()
    x, mask, bias = make_batch()
    y = _local_call(mixer, x, mask, bias)
    pad = 9
    x2 = torch.cat([x, torch.randn(x.size(0), pad, C) * 3], dim=1)
    mask2 = torch.cat([mask, torch.zeros(x.size(0), pad, dtype=torch.bool)], dim=1)
    bias2 = torch.randn(x.size(0), H, x2.size(1), x2.size(1))
    bias2[:, :, : x.size(1), : x.size(1)] = bias
    torch.testing.assert_close(_local_call(mixer, x2, mask2, bias2)[:, : x.size(1)][mask], y[mask])
    x3, bias3 = x.clone(), bias.clone()
    x3[1] += torch.randn_like(x3[1]) * mask[1, :, None]
    bias3[1] += 1.0
    y3 = _local_call(mixer, x3, mask, bias3)
    torch.testing.assert_close(y3[0], y[0])
    torch.testing.assert_close(y3[2], y[2])
    assert not torch.allclose(y3[1][mask[1]], y[1][mask[1]])
    # and k matters: with 4 of 12 neighbours the output differs from full attention with the same weights
    full = build_mixer("math", embed_dim=C, num_heads=H).eval()
    full.load_state_dict(mixer.state_dict())
    assert not torch.allclose(full(x, mask, bias)[mask], y[mask], atol=1e-3)


def test_masked_and_gathered_evaluations_agree():
    """attend="masked" (SDPA over a neighbour mask) and "gather" (gathered keys) are the same function."""
    torch.manual_seed(0)
    masked = build_mixer("local", embed_dim=C, num_heads=H, k=5).eval()
    gather = build_mixer("local", embed_dim=C, num_heads=H, k=5, attend="gather").eval()
    gather.load_state_dict(masked.state_dict())
    x, mask, bias = make_batch()
    torch.testing.assert_close(_local_call(gather, x, mask, bias)[mask], _local_call(masked, x, mask, bias)[mask],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options", [{}, dict(version=3.5), dict(block_params=dict(scale_attn_mask=True)),
                                     dict(pair_embed_dims=None), dict(attend="gather")])
def test_local_with_k_at_least_n_is_full_attention_with_u(options):
    """k >= N: LocalParT with ParT's weights gives ParT's outputs (U evaluated sparsely vs densely; softmax over
    the same real keys in another order); also with weaver 3.5 (qk-norm, gates), scale_attn_mask, no U."""
    torch.manual_seed(0)
    attend = options.pop("attend", "masked")
    cfg = dict(SMALL, **options)
    ref = ParticleTransformer(**cfg).eval()
    if cfg.get("block_params"):
        with torch.no_grad():
            for block in ref.blocks:
                block.c_mask.fill_(0.7)
    local = ParticleTransformer(**cfg, mixer="local", mixer_options={"k": 24, "attend": attend}).eval()
    local.load_state_dict(ref.state_dict(), strict=True)
    x, v, mask = jets()
    with torch.no_grad():
        torch.testing.assert_close(local(x, v, mask), ref(x, v, mask), atol=2e-5, rtol=1e-4)
        small_k = ParticleTransformer(**cfg, mixer="local", mixer_options={"k": 4, "attend": attend}).eval()
        small_k.load_state_dict(ref.state_dict())
        assert not torch.allclose(small_k(x, v, mask), ref(x, v, mask), atol=1e-3)


def test_training_step_never_builds_a_dense_u(monkeypatch):
    """In training as in evaluation the skeleton calls neither of weaver's dense-U paths; gradients reach U's
    layers through the sparse pairs."""
    def forbidden(*a, **k):
        raise AssertionError("dense U computed")

    monkeypatch.setattr(PairEmbed, "_forward_dense", forbidden)
    monkeypatch.setattr(PairEmbed, "_forward_sparse", forbidden)
    torch.manual_seed(0)
    model = ParticleTransformer(**SMALL, mixer="local", mixer_options={"k": 4}).train()
    x, v, mask = jets()
    model(x, v, mask).logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.pair_embed.parameters())
    model.eval()(x, v, mask)


def test_clear_errors():
    with pytest.raises(ValueError, match="k must be a positive int"):
        build_mixer("local", embed_dim=C, num_heads=H, k=0)
    with pytest.raises(ValueError, match="attend must be"):
        build_mixer("local", embed_dim=C, num_heads=H, attend="dense")
    with pytest.raises(TypeError, match="needs LocalPairs"):
        x, mask, bias = make_batch()
        build_mixer("local", embed_dim=C, num_heads=H)(x, mask, bias)
    with pytest.raises(ValueError, match="global token"):
        ParticleTransformer(**dict(SMALL, num_cls_layers=0), include_global_token=True, mixer="local")
    x, _, mask = jets()
    with pytest.raises(ValueError, match="4-vectors"):
        ParticleTransformer(**SMALL, mixer="local").eval()(x, None, mask)


def test_onnx_export_matches_torch(tmp_path):
    """The inference model exports as weaver does (TorchScript exporter, opset 15, dynamic batch and length):
    ONNX Runtime == torch at two lengths (both >= k: the exported top-k has a fixed k)."""
    import warnings

    import onnxruntime as ort

    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, for_inference=True), mixer="local", mixer_options={"k": 6}).eval()
    path = str(tmp_path / "local.onnx")
    axes = {n: {0: "B", 2: "N"} for n in ("x", "v", "mask")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, jets(), path, opset_version=15, dynamo=False, input_names=["x", "v", "mask"],
                          output_names=["y"], dynamic_axes={**axes, "y": {0: "B"}})
    session = ort.InferenceSession(path)
    for N, n_real in ((24, (24, 13, 7, 6)), (10, (10, 8, 2, 7))):  # a jet with 2 < k particles
        x, v, mask = jets(N=N, n_real=n_real, seed=N)
        (y,) = session.run(None, {"x": x.numpy(), "v": v.numpy(), "mask": mask.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(y), model(x, v, mask), atol=1e-5, rtol=1e-4)


def test_local_and_dense_blocks_mix():
    """Per-block mixers (block_mixers): a local block next to a dense-U block; with k >= N it is ParT."""
    torch.manual_seed(0)
    ref = ParticleTransformer(**SMALL).eval()
    mixed = ParticleTransformer(**SMALL, mixer="local", mixer_options={"k": 24}, block_mixers=["local", "sdpa"]).eval()
    mixed.load_state_dict(ref.state_dict(), strict=True)
    x, v, mask = jets()
    with torch.no_grad():
        torch.testing.assert_close(mixed(x, v, mask), ref(x, v, mask), atol=2e-5, rtol=1e-4)
