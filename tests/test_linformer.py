"""Linformer mixer: exact reduction to full attention, agreement with the linformer package, U projection."""

import math

import pytest
import torch
from linformer import LinformerSelfAttention

from partx.nn.attention import AttentionMixer
from partx.nn.linformer import LinformerMixer

from mixer_helpers import C, H, assert_onnx_matches, make_batch  # noqa: E402




@pytest.mark.parametrize("backend", ["math", "sdpa"])
@pytest.mark.parametrize("N", [12, 16])
def test_identity_projection_is_full_attention(backend, N):
    """k = max_len, E = F = I: the empty (padded) slots are masked and the mixer is full attention with U."""
    torch.manual_seed(0)
    full = AttentionMixer(C, H, backend="math").eval()
    lin = LinformerMixer(C, H, max_len=16, k=16, backend=backend).eval()
    missing = lin.load_state_dict(full.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["proj_k", "proj_v"]  # ParT weights initialise everything else
    with torch.no_grad():
        lin.proj_k.copy_(torch.eye(16))
        lin.proj_v.copy_(torch.eye(16))
    x, mask, bias = make_batch(N=N, n_real=(N, 7, 3))
    for u in (bias, None):
        torch.testing.assert_close(lin(x, mask, u)[mask], full(x, mask, u)[mask], atol=1e-5, rtol=1e-5)


def test_projected_bias_is_projection_of_full_logits():
    """Learned E, F: logits = (QK^T/sqrt(d) + U) E over real keys, values F^T V."""
    torch.manual_seed(1)
    lin = LinformerMixer(C, H, max_len=20, k=6, backend="math").eval()
    x, mask, bias = make_batch(N=14, n_real=(14, 9, 2))
    q, k, v = lin.split_heads(x)
    real = mask[:, None, None, :]
    logits = torch.where(real, q @ k.transpose(-2, -1) / math.sqrt(C // H) + bias, 0.0) @ lin.proj_k[:14]
    values = lin.proj_v[:14].T @ torch.where(mask[:, None, :, None], v, 0.0)
    ref = lin.merge_heads(logits.softmax(-1) @ values)
    torch.testing.assert_close(lin(x, mask, bias)[mask], ref[mask], atol=1e-5, rtol=1e-5)


def _from_package(pkg: LinformerSelfAttention, max_len: int, k: int) -> LinformerMixer:
    """Map the package's parameters (to_q/to_k/to_v without bias, proj_k/proj_v, to_out) onto the mixer."""
    mixer = LinformerMixer(C, H, max_len=max_len, k=k).eval()
    with torch.no_grad():
        mixer.in_proj.weight.copy_(torch.cat([pkg.to_q.weight, pkg.to_k.weight, pkg.to_v.weight]))
        mixer.in_proj.bias.zero_()
        mixer.proj_k.copy_(pkg.proj_k)
        mixer.proj_v.copy_(pkg.proj_v)
        mixer.out_proj.load_state_dict(pkg.to_out.state_dict())
    return mixer


@pytest.mark.parametrize("N", [16, 10])
def test_matches_linformer_package_without_padding(N):
    """Same parameterisation as linformer.LinformerSelfAttention: equal outputs when every particle is real."""
    torch.manual_seed(2)
    pkg = LinformerSelfAttention(C, seq_len=16, k=8, heads=H).eval()
    mixer = _from_package(pkg, max_len=16, k=8)
    x = torch.randn(2, N, C)
    mask = torch.ones(2, N, dtype=torch.bool)
    torch.testing.assert_close(mixer(x, mask, None), pkg(x), atol=1e-5, rtol=1e-5)


def test_package_would_leak_padding_but_mixer_does_not():
    torch.manual_seed(3)
    pkg = LinformerSelfAttention(C, seq_len=16, k=8, heads=H).eval()
    mixer = _from_package(pkg, max_len=16, k=8)
    x, mask, _ = make_batch(N=12, n_real=(12, 7, 3))
    x2 = x.clone()
    x2[~mask] = torch.randn_like(x2[~mask]) * 5  # different garbage in the padding
    assert not torch.allclose(pkg(x)[mask], pkg(x2)[mask], atol=1e-4)
    torch.testing.assert_close(mixer(x, mask, None)[mask], mixer(x2, mask, None)[mask], atol=1e-6, rtol=1e-6)


def test_share_kv_and_recorded_weights():
    lin = LinformerMixer(C, H, max_len=16, k=5, share_kv=True)
    assert lin.proj_v is None and "proj_v" not in dict(lin.named_parameters())
    lin.record_weights = True
    x, mask, bias = make_batch()
    lin(x, mask, bias)
    assert lin.last_weights.shape == (3, H, 12, 5)


@pytest.mark.parametrize("k", [0, -1, 17, 2.5, None])
def test_bad_k_is_a_clear_error(k):
    with pytest.raises(ValueError, match=r"k \(projection length\)"):
        LinformerMixer(C, H, max_len=16, k=k)


def test_too_long_input_is_a_clear_error():
    lin = LinformerMixer(C, H, max_len=8, k=4)
    x, mask, bias = make_batch(N=12)
    with pytest.raises(ValueError, match="max_len=8"):
        lin(x, mask, bias)


def test_onnx_export_opset17_matches_onnxruntime(tmp_path):
    """TorchScript-based exporter, dynamic batch and particle axes (the dynamo exporter needs onnxscript)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    torch.manual_seed(0)
    mixer = LinformerMixer(C, H, max_len=16, k=8).eval()
    assert_onnx_matches(mixer, tmp_path)
