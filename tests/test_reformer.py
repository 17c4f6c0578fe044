"""Reformer mixer: agreement with reformer-pytorch's LSHAttention, padding invariance with real LSH, U gather."""

import math

import pytest
import torch
import torch.nn.functional as F
from reformer_pytorch import LSHAttention

from partx.nn.reformer import ReformerMixer, lsh_attention, lsh_buckets

from mixer_helpers import C, H, assert_onnx_matches, make_batch  # noqa: E402




def test_hashing_and_attention_match_the_package():
    """All real, no U: same rotations -> the package's buckets and outputs."""
    BH, L, D, bucket_size, n_hashes = 6, 32, 8, 4, 3
    qk, v = torch.randn(BH, L, D), torch.randn(BH, L, D)
    pkg = LSHAttention(bucket_size=bucket_size, n_hashes=n_hashes).eval()
    n_buckets = L // bucket_size
    torch.manual_seed(7)
    ref_out, _, ref_buckets = pkg(qk, v)
    torch.manual_seed(7)
    rotations = torch.randn(1, D, n_hashes, n_buckets // 2)  # the package's draw
    offsets = torch.arange(n_hashes)[None, :, None] * n_buckets
    torch.testing.assert_close((lsh_buckets(qk, rotations) + offsets).flatten(1), ref_buckets)
    torch.testing.assert_close(lsh_attention(qk, v, rotations, bucket_size), ref_out, atol=1e-5, rtol=1e-5)


def build(bucket_size=4, n_hashes=3, max_len=32, seed=0):
    torch.manual_seed(seed)
    return ReformerMixer(C, H, max_len=max_len, bucket_size=bucket_size, n_hashes=n_hashes).eval()


def test_padding_invariance_with_many_buckets():
    """8 buckets x 3 rounds: garbage padding neither moves real tokens' chunks nor leaks into them."""
    mixer = build()
    x, mask, bias = make_batch(N=12)
    y = mixer(x, mask, bias)
    for extra in (5, 20):  # total 17 and 32 <= max_len
        x2 = torch.cat([x, torch.randn(3, extra, C) * 4], 1)
        x2[:, :12][~mask] = torch.randn_like(x2[:, :12][~mask]) * 4
        mask2 = torch.cat([mask, torch.zeros(3, extra, dtype=torch.bool)], 1)
        bias2 = torch.randn(3, H, 12 + extra, 12 + extra) * 3
        bias2[:, :, :12, :12] = bias
        bias2[:, :, :12, :12].masked_fill_(~mask[:, None, None, :], 9.0)  # garbage U on padded keys, too
        torch.testing.assert_close(mixer(x2, mask2, bias2)[:, :12][mask], y[mask], atol=2e-5, rtol=1e-4)


def test_eval_is_deterministic_and_state_dict_reproduces_it():
    mixer = build()
    x, mask, bias = make_batch()
    y = mixer(x, mask, bias)
    torch.testing.assert_close(mixer(x, mask, bias), y, atol=0, rtol=0)
    assert "rotations" in mixer.state_dict()
    other = build(seed=123)
    other.load_state_dict(mixer.state_dict())
    torch.testing.assert_close(other(x, mask, bias), y, atol=0, rtol=0)


def test_training_draws_new_rotations():
    mixer = build(bucket_size=2, n_hashes=1).train()
    x, mask, bias = make_batch(N=32, n_real=(32, 30, 25))
    outs = [mixer(x, mask, bias) for _ in range(4)]
    assert any(not torch.allclose(outs[0][mask], o[mask]) for o in outs[1:])


def shared_qk_full_attention(mixer, x, mask, bias):
    """Reference: every pair computed; normalised keys, self logit -5e4, padded keys masked, U added."""
    qk, _, v = mixer.split_heads(x)
    logits = qk @ F.normalize(qk, dim=-1).transpose(-2, -1) / math.sqrt(C // H) + bias
    logits = logits.masked_fill(~mask[:, None, None, :], torch.finfo(logits.dtype).min)
    eye = torch.eye(x.size(1), dtype=torch.bool)
    logits = logits.masked_fill(eye, -5e4)
    return mixer.merge_heads(logits.softmax(-1) @ v)


@pytest.mark.parametrize("N", [16, 11])
def test_gathered_bias_is_exact_when_chunks_cover_all_pairs(N):
    """One round, two chunks that look back at each other: LSH attention computes every pair, so with U
    gathered it equals shared-QK full attention with U."""
    mixer = build(bucket_size=8, n_hashes=1, max_len=16)
    x, mask, bias = make_batch(N=N, n_real=(N, 7, 3))
    ref = shared_qk_full_attention(mixer, x, mask, bias)
    torch.testing.assert_close(mixer(x, mask, bias)[mask], ref[mask], atol=1e-5, rtol=1e-5)


def test_bias_is_used():
    mixer = build()
    x, mask, bias = make_batch()
    assert not torch.allclose(mixer(x, mask, bias)[mask], mixer(x, mask, None)[mask])


def test_fixed_length_and_parameters():
    mixer = ReformerMixer(C, H, max_len=128)
    assert (mixer.bucket_size, mixer.n_hashes, mixer.seq_len) == (16, 2, 128)
    assert ReformerMixer(C, H, max_len=100, bucket_size=16).seq_len == 128  # multiple of 2 * bucket_size
    assert mixer.in_proj.weight.shape == (2 * C, C)  # shared QK + V


@pytest.mark.parametrize("opt", [{"bucket_size": 0}, {"bucket_size": 2.0}, {"n_hashes": 0}, {"n_hashes": None}])
def test_bad_options_are_clear_errors(opt):
    with pytest.raises(ValueError, match=next(iter(opt))):
        ReformerMixer(C, H, max_len=32, **opt)


def test_too_long_input_is_a_clear_error():
    mixer = ReformerMixer(C, H, max_len=8, bucket_size=2)
    x, mask, bias = make_batch(N=12)
    with pytest.raises(ValueError, match="max_len=8"):
        mixer(x, mask, bias)


def test_onnx_export_opset17_matches_onnxruntime(tmp_path):
    """TorchScript-based exporter, dynamic batch and particle axes (the dynamo exporter needs onnxscript)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    torch.manual_seed(0)
    mixer = ReformerMixer(C, H, max_len=16, bucket_size=4, n_hashes=2).eval()
    assert_onnx_matches(mixer, tmp_path)
