"""Semantics every registered particle mixer must satisfy (see partx/nn/mixers.py)."""

import pytest
import torch

from partx.nn.mixers import available_mixers, build_mixer

from mixer_helpers import C, H, call_mixer, make_batch  # noqa: E402




def build(name, max_len=32):
    torch.manual_seed(0)
    return build_mixer(name, embed_dim=C, num_heads=H, dropout=0.0, max_len=max_len).eval()


@pytest.fixture(params=available_mixers())
def name(request):
    return request.param


def test_shape_and_batch_first(name):
    mixer = build(name)
    x, mask, bias = make_batch()
    y = call_mixer(mixer, x, mask, bias)
    assert y.shape == x.shape
    assert torch.isfinite(y[mask]).all()


def test_padding_does_not_change_real_outputs(name):
    mixer = build(name)
    x, mask, bias = make_batch()
    y = call_mixer(mixer, x, mask, bias)
    pad = 9  # more padding, filled with garbage: real outputs must not move
    x2 = torch.cat([x, torch.randn(x.size(0), pad, C) * 3], dim=1)
    mask2 = torch.cat([mask, torch.zeros(x.size(0), pad, dtype=torch.bool)], dim=1)
    bias2 = torch.randn(x.size(0), H, x2.size(1), x2.size(1))
    bias2[:, :, : x.size(1), : x.size(1)] = bias
    y2 = call_mixer(mixer, x2, mask2, bias2)
    torch.testing.assert_close(y2[:, : x.size(1)][mask], y[mask], atol=2e-5, rtol=1e-4)


def test_no_information_between_jets(name):
    mixer = build(name)
    x, mask, bias = make_batch()
    y = call_mixer(mixer, x, mask, bias)
    x2, bias2 = x.clone(), bias.clone()
    x2[1] += torch.randn_like(x2[1]) * mask[1, :, None]
    bias2[1] += 1.0
    y2 = call_mixer(mixer, x2, mask, bias2)
    torch.testing.assert_close(y2[0], y[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(y2[2], y[2], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(y2[1][mask[1]], y[1][mask[1]])


def test_gradients_reach_all_parameters(name):
    mixer = build(name).train()
    x, mask, bias = make_batch()
    x.requires_grad_(True)
    y = call_mixer(mixer, x, mask, bias)
    (y[mask] ** 2).sum().backward()
    missing = [n for n, p in mixer.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient for {missing}"
    assert x.grad is not None and x.grad[mask].abs().sum() > 0


def test_unknown_mixer_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mixer 'nope'"):
        build_mixer("nope", embed_dim=C, num_heads=H)


def test_sdpa_equals_math_reference():
    torch.manual_seed(0)
    sdpa = build_mixer("sdpa", embed_dim=C, num_heads=H).eval()
    math_ = build_mixer("math", embed_dim=C, num_heads=H).eval()
    math_.load_state_dict(sdpa.state_dict())
    x, mask, bias = make_batch()
    torch.testing.assert_close(sdpa(x, mask, bias)[mask], math_(x, mask, bias)[mask], atol=1e-5, rtol=1e-5)


def test_bias_changes_attention():
    mixer = build("sdpa")
    x, mask, bias = make_batch()
    assert not torch.allclose(mixer(x, mask, bias)[mask], mixer(x, mask, None)[mask])


def test_misspelled_option_raises_naming_it_and_the_valid_ones(name):
    with pytest.raises(TypeError, match=r"'dropuot'.*valid options: embed_dim, num_heads, dropout"):
        build_mixer(name, embed_dim=C, num_heads=H, max_len=32, dropuot=0.1)


def test_max_len_reaches_only_mixers_that_declare_it(name):
    mixer = build(name, max_len=40)
    cls = type(mixer)
    assert isinstance(cls.needs_max_len, bool)
    assert ("max_len" in cls.__init__.valid_options) == cls.needs_max_len
    if cls.needs_max_len:
        assert mixer.max_len == 40


def test_mixer_declares_its_interface(name):
    cls = type(build(name))
    assert isinstance(cls.uses_bias, bool) and isinstance(cls.weaver_init, bool)
    assert set(cls.attention_options) <= set(cls.__init__.valid_options)


def test_fixed_registry_option_cannot_be_overridden():
    with pytest.raises(ValueError, match="fixes backend"):
        build_mixer("sdpa", embed_dim=C, num_heads=H, backend="math")
