"""The ParT skeleton: weaver compatibility and whole-model semantics for every mixer."""

import logging

import pytest
import torch
from weaver.nn.model.ParticleTransformer import ParticleTransformer as WeaverParT

from partx.models.part import ParticleTransformer

logging.getLogger("weaver").setLevel(logging.WARNING)

PAPER = dict(input_dim=17, num_classes=10, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8,
             num_layers=8, num_cls_layers=2, fc_params=[], trim=False)
SMALL = dict(input_dim=7, num_classes=10, embed_dims=[32, 32], pair_embed_dims=[16], num_heads=4, num_layers=2,
             num_cls_layers=1, trim=False)


def jets(B=4, N=40, F=17, n_real=(40, 23, 5, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, F, N, generator=g)
    p3 = torch.randn(B, 3, N, generator=g) * 20
    v = torch.cat([p3, p3.norm(dim=1, keepdim=True) + 0.5], dim=1)
    mask = torch.zeros(B, 1, N)
    for b, n in enumerate(n_real):
        mask[b, :, :n] = 1
    return x * mask, v * mask, mask


def test_loads_weaver_state_dict_and_matches_outputs():
    torch.manual_seed(0)
    ref = WeaverParT(**PAPER).eval()
    ours = ParticleTransformer(**PAPER).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == 2_143_486  # the paper's 2.14M
    x, v, mask = jets()
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask), ref(x, v, mask), atol=1e-5, rtol=0)


def test_weaver_loads_ours_too_and_math_backend_agrees():
    torch.manual_seed(1)
    ours = ParticleTransformer(**PAPER, mixer="math").eval()
    ref = WeaverParT(**PAPER).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x, v, mask = jets(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask), ref(x, v, mask), atol=1e-5, rtol=0)


def test_for_inference_gives_probabilities():
    model = ParticleTransformer(**SMALL, for_inference=True).eval()
    x, v, mask = jets(F=7)
    with torch.no_grad():
        p = model(x, v, mask)
    torch.testing.assert_close(p.sum(1), torch.ones(4))


def test_part_plain_has_no_pair_embedding_and_ignores_vectors():
    model = ParticleTransformer(**dict(SMALL, pair_embed_dims=None)).eval()
    assert model.pair_embed is None
    x, v, mask = jets(F=7)
    with torch.no_grad():
        torch.testing.assert_close(model(x, v, mask), model(x, v * 3, mask))


def test_bias_free_mixer_skips_u():
    model = ParticleTransformer(**dict(SMALL, mixer="mamba", ordering="pt"))
    assert model.pair_embed is None


@pytest.mark.parametrize("mixer,ordering", [("sdpa", "none"), ("flex", "none"), ("linformer", "none"),
                                            ("reformer", "none"), ("mamba", "pt"), ("mamba2", "sfc")])
def test_whole_model_padding_invariance(mixer, ordering):
    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, mixer=mixer, ordering=ordering, max_len=64)).eval()
    x, v, mask = jets(F=7, N=40)
    pad = 16
    x2, v2, mask2 = (torch.nn.functional.pad(t, (0, pad)) for t in (x, v, mask))
    x2[:, :, 40:] = torch.randn(4, 7, pad)  # garbage in padded slots must not matter
    with torch.no_grad():
        torch.testing.assert_close(model(x2, v2, mask2), model(x, v, mask), atol=2e-5, rtol=1e-4)


def test_ordering_makes_mamba_permutation_invariant_at_jet_level():
    """With an explicit pT ordering the input order of particles no longer matters."""
    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, mixer="mamba", ordering="pt")).eval()
    x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
    perm = torch.randperm(40)
    with torch.no_grad():
        torch.testing.assert_close(model(x[..., perm], v[..., perm], mask), model(x, v, mask), atol=1e-5, rtol=1e-4)


def test_ordering_needs_vectors():
    model = ParticleTransformer(**dict(SMALL, mixer="mamba", ordering="pt", pair_embed_dims=None))
    x, _, mask = jets(F=7)
    with pytest.raises(ValueError, match="needs the particle 4-vectors"):
        model(x, None, mask)


def test_unknown_option_and_mixer_are_clear_errors():
    with pytest.raises(TypeError, match="not_an_option"):
        ParticleTransformer(**SMALL, not_an_option=1)
    with pytest.raises(ValueError, match="unknown mixer 'bogus'"):
        ParticleTransformer(**dict(SMALL, mixer="bogus"))


def test_gradients_reach_every_parameter():
    model = ParticleTransformer(**SMALL).train()
    x, v, mask = jets(F=7)
    model(x, v, mask).logsumexp(1).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


def test_training_trimmer_shuffle_is_undone_by_the_ordering():
    """weaver's trimmer shuffles particles in training only; an ordering restores pT order for the mixer."""
    torch.manual_seed(0)
    seen = []
    for ordering in ("none", "pt"):
        model = ParticleTransformer(**dict(SMALL, mixer="linformer", ordering=ordering, trim=True, max_len=64)).train()
        v_in = []
        model.pair_embed.register_forward_pre_hook(lambda mod, args, kw: v_in.append(args[0].detach()), with_kwargs=True)
        x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
        order = v[:, :2].norm(dim=1).argsort(dim=1, descending=True)  # inputs in pT order, as weaver's are
        x, v = (t.gather(2, order[:, None].expand_as(t)) for t in (x, v))
        for _ in range(7):  # past the trimmer's 5-step warm-up
            model(x, v, mask)
        pt = v_in[-1][:, :2].norm(dim=1)
        seen.append(bool((pt[:, :-1] >= pt[:, 1:]).all()))
    assert seen == [False, True]
