"""FlexAttention mixer: same function as the math reference; kernel choice recorded; CUDA checks skip without CUDA."""


import pytest
import torch

from partx import config
from partx.nn.attention import AttentionMixer
from partx.nn.flex_attention import FlexAttentionMixer

from mixer_helpers import C, H, assert_onnx_matches, make_batch  # noqa: E402
cuda = pytest.mark.cuda  # skipped without CUDA by tests/conftest.py




def pair(dropout=0.0, device="cpu"):
    torch.manual_seed(0)
    flex = FlexAttentionMixer(C, H, dropout=dropout).to(device).eval()
    ref = AttentionMixer(C, H, dropout=dropout, backend="math").to(device).eval()
    ref.load_state_dict(flex.state_dict())  # same parameters as AttentionMixer / weaver
    return flex, ref


def test_flex_forward_equals_math_on_cpu():
    flex, ref = pair()
    x, mask, bias = make_batch(N=20, n_real=(20, 9, 1))
    with torch.no_grad():
        y = flex(x, mask, bias)
        assert flex.last_kernel == "flex"
        torch.testing.assert_close(y[mask], ref(x, mask, bias)[mask], atol=1e-5, rtol=1e-5)


def test_cpu_training_falls_back_to_sdpa_with_the_same_gradients():
    flex, ref = pair()
    flex.train(), ref.train()
    x, mask, bias = make_batch()
    y = flex(x, mask, bias)
    assert flex.last_kernel.startswith("sdpa-")
    (y[mask] ** 2).sum().backward()
    (ref(x, mask, bias)[mask] ** 2).sum().backward()
    for (name, p), q in zip(flex.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_without_bias_uses_sdpa():
    flex, ref = pair()
    x, mask, _ = make_batch()
    with torch.no_grad():
        y = flex(x, mask, None)
    assert flex.last_kernel in ("sdpa-flash", "sdpa-efficient", "sdpa-math", "sdpa-cudnn", "sdpa")
    torch.testing.assert_close(y[mask], ref(x, mask, None)[mask], atol=1e-5, rtol=1e-5)


def test_attention_dropout_is_not_silently_dropped():
    flex, _ = pair(dropout=0.1)
    flex.train()
    x, mask, bias = make_batch()
    with torch.no_grad():
        flex(x, mask, bias)
    assert flex.last_kernel.startswith("sdpa")  # FlexAttention has no dropout


def test_math_switch_and_recorded_weights():
    flex, ref = pair()
    x, mask, bias = make_batch()
    config.set_fused_attn(False)
    try:
        y = flex(x, mask, bias)
        assert flex.last_kernel == "math"
    finally:
        config.set_fused_attn(True)
    flex.record_weights = True
    flex(x, mask, bias)
    assert flex.last_kernel == "math" and flex.last_weights.shape == (3, H, 12, 12)
    torch.testing.assert_close(y, ref(x, mask, bias), atol=1e-6, rtol=1e-6)


def test_bad_compile_option():
    with pytest.raises(ValueError, match="compile"):
        FlexAttentionMixer(C, H, compile="yes")


@cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.bfloat16, 3e-2)])
def test_cuda_flex_forward_backward_equal_math(dtype, tol):
    flex, ref = pair(device="cuda")
    flex.train(), ref.train()  # dropout 0: flex runs in training on CUDA
    x, mask, bias = make_batch(B=4, N=128, n_real=(128, 60, 17, 1), device="cuda")
    x.requires_grad_(True)
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        y = flex(x, mask, bias)
        assert flex.last_kernel == "flex"
        y_ref = ref(x, mask, bias)
    torch.testing.assert_close(y[mask].float(), y_ref[mask].float(), atol=tol, rtol=tol)
    gx, = torch.autograd.grad((y[mask].float() ** 2).sum(), x)
    gx_ref, = torch.autograd.grad((y_ref[mask].float() ** 2).sum(), x)
    torch.testing.assert_close(gx[mask], gx_ref[mask], atol=tol * 10, rtol=tol * 10)


@cuda
def test_cuda_flex_uses_less_memory_than_math():
    flex, ref = pair(device="cuda")
    B, N = 16, 512
    x, mask, bias = make_batch(B=B, N=N, n_real=[N] * B, device="cuda")
    peaks = {}
    for name, m in (("flex", flex), ("math", ref)):
        with torch.no_grad():
            m(x, mask, bias)  # warm-up / compile
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            m(x, mask, bias)
        torch.cuda.synchronize()
        peaks[name] = torch.cuda.max_memory_allocated() - base
    assert peaks["flex"] < peaks["math"], peaks


def test_onnx_export_opset17_matches_onnxruntime(tmp_path):
    """TorchScript-based exporter, dynamic batch and particle axes (the dynamo exporter needs onnxscript)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    torch.manual_seed(0)
    mixer = FlexAttentionMixer(C, H).eval()
    assert_onnx_matches(mixer, tmp_path)
