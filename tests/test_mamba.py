"""Mamba scans, blocks and the bidirectional mixer (partx.nn.mamba).

Tolerances: the chunked scans evaluate the same fp32 recurrence in a different order (blocked
multiply-adds for Mamba-1; masked matmuls + state passing for SSD), so they agree with the sequential
reference to rounding: measured <= 1e-5 absolute on O(1) outputs; we assert atol = rtol = 1e-5 for
values (5e-5 for SSD, whose matmuls sum up to chunk-size terms in another order) and 1e-4 for
gradients, which accumulate over the whole sequence.
"""

import pytest
import torch

from partx import config
from partx.nn.mamba import backend, scan_chunked, scan_cuda, scan_ref
from partx.nn.mamba.block import Mamba2Block, MambaBlock
from partx.nn.mamba.mixer import BiMambaMixer, reverse_within_length
from partx.nn.mixers import build_mixer


def mamba1_inputs(batch=3, dim=8, nstate=4, length=37, seed=0, requires_grad=False):
    """u, delta, A, B, C, D, z, delta_bias with mamba-ssm's layouts and realistic scales."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    ts = [
        r(batch, dim, length),  # u
        r(batch, dim, length) * 0.5 - 1.0,  # delta (softplus-ed inside)
        -torch.rand(dim, nstate, generator=g) * 8 - 0.5,  # A < 0
        r(batch, nstate, length),  # B
        r(batch, nstate, length),  # C
        r(dim),  # D
        r(batch, dim, length),  # z
        r(dim) * 0.5,  # delta_bias
    ]
    return [t.requires_grad_(requires_grad) for t in ts]


def ssd_inputs(batch=2, length=37, nheads=4, headdim=3, groups=2, nstate=5, seed=0, requires_grad=False):
    """x, dt, A, B, C, D, z, dt_bias with mamba-ssm's Mamba-2 layouts."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    ts = [
        r(batch, length, nheads, headdim),
        r(batch, length, nheads) * 0.5 - 1.0,
        -torch.rand(nheads, generator=g) * 8 - 0.5,
        r(batch, length, groups, nstate),
        r(batch, length, groups, nstate),
        r(nheads),
        r(batch, length, nheads, headdim),
        r(nheads) * 0.5,
    ]
    return [t.requires_grad_(requires_grad) for t in ts]


def call_mamba1(fn, ts, **kw):
    u, delta, A, B, C, D, z, bias = ts
    return fn(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, **kw)


def call_ssd(fn, ts, **kw):
    x, dt, A, B, C, D, z, bias = ts
    return fn(x, dt, A, B, C, D, z=z, dt_bias=bias, dt_softplus=True, **kw)


# ---------------------------------------------------------------- scans: chunked == reference


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])  # 37 steps: not divisible by 5 or 16; 64 > L
def test_mamba1_chunked_equals_reference(chunk):
    ts = mamba1_inputs()
    ref, ref_state = call_mamba1(scan_ref.selective_scan_ref, ts, return_last_state=True)
    out, state = call_mamba1(scan_chunked.selective_scan_chunked, ts, return_last_state=True, chunk_size=chunk)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, ref_state, atol=1e-5, rtol=1e-5)


def test_mamba1_chunked_blocks_over_jets(monkeypatch):
    # Force several jet blocks (one jet per block) to cover the block loop's boundaries.
    monkeypatch.setattr(scan_chunked, "BLOCK_ELEMS", 1)
    ts = mamba1_inputs(batch=4)
    torch.testing.assert_close(
        call_mamba1(scan_chunked.selective_scan_chunked, ts, chunk_size=8),
        call_mamba1(scan_ref.selective_scan_ref, ts), atol=1e-5, rtol=1e-5,
    )


@pytest.mark.parametrize("chunk", [4, 16])
def test_mamba1_chunked_gradients_equal_reference(chunk):
    ts_ref = mamba1_inputs(length=21, requires_grad=True)
    ts_chk = mamba1_inputs(length=21, requires_grad=True)
    w = torch.randn(3, 8, 21, generator=torch.Generator().manual_seed(1))
    (call_mamba1(scan_ref.selective_scan_ref, ts_ref) * w).sum().backward()
    (call_mamba1(scan_chunked.selective_scan_chunked, ts_chk, chunk_size=chunk) * w).sum().backward()
    for name, a, b in zip("u delta A B C D z delta_bias".split(), ts_chk, ts_ref):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_mamba1_chunked_gradients_through_last_state_and_blocks(monkeypatch):
    """The hand-written backward (``_BlockedScan``) with a gradient on the final state too, one jet per
    block and a chunk that does not divide the length: equal to autograd through the reference loop."""
    monkeypatch.setattr(scan_chunked, "BLOCK_ELEMS", 1)
    ts_ref = mamba1_inputs(length=23, requires_grad=True)
    ts_chk = mamba1_inputs(length=23, requires_grad=True)
    g = torch.Generator().manual_seed(2)
    w, v = torch.randn(3, 8, 23, generator=g), torch.randn(3, 8, 4, generator=g)
    for fn, ts, kw in ((scan_ref.selective_scan_ref, ts_ref, {}),
                       (scan_chunked.selective_scan_chunked, ts_chk, {"chunk_size": 5})):
        y, last = call_mamba1(fn, ts, return_last_state=True, **kw)
        ((y * w).sum() + (last * v).sum()).backward()
    for name, a, b in zip("u delta A B C D z delta_bias".split(), ts_chk, ts_ref):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("chunk", [1, 7, 16, 64])
def test_ssd_chunked_equals_reference(chunk):
    ts = ssd_inputs()
    ref, ref_state = call_ssd(scan_ref.ssd_scan_ref, ts, return_final_states=True)
    out, state = call_ssd(scan_chunked.ssd_scan_chunked, ts, return_final_states=True, chunk_size=chunk)
    torch.testing.assert_close(out, ref, atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(state, ref_state, atol=5e-5, rtol=1e-5)


def test_ssd_chunked_gradients_equal_reference():
    ts_ref = ssd_inputs(length=21, requires_grad=True)
    ts_chk = ssd_inputs(length=21, requires_grad=True)
    w = torch.randn(2, 21, 4, 3, generator=torch.Generator().manual_seed(1))
    (call_ssd(scan_ref.ssd_scan_ref, ts_ref) * w).sum().backward()
    (call_ssd(scan_chunked.ssd_scan_chunked, ts_chk, chunk_size=8) * w).sum().backward()
    for name, a, b in zip("x dt A B C D z dt_bias".split(), ts_chk, ts_ref):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_mambapy_backend_equals_reference():
    pytest.importorskip("mambapy")
    ts = mamba1_inputs()
    torch.testing.assert_close(
        call_mamba1(backend.selective_scan_mambapy, ts), call_mamba1(scan_ref.selective_scan_ref, ts), atol=1e-5, rtol=1e-5
    )


def test_backend_resolution():
    cpu = torch.device("cpu")
    assert backend.resolve("auto", "mamba1", cpu) == "chunked"  # never the CUDA kernel for CPU tensors
    assert backend.resolve("ref", "mamba2", cpu) == "ref"
    with pytest.raises(ValueError, match="unknown mamba backend 'nope'"):
        backend.resolve("nope", "mamba1", cpu)
    with pytest.raises(ValueError, match="only provides the Mamba-1 scan"):
        backend.resolve("mambapy", "mamba2", cpu)


# ---------------------------------------------------------------- blocks: mamba-ssm layout

# Read from mamba-ssm's mamba_ssm/modules/mamba_simple.py (Mamba) and modules/mamba2.py (Mamba2):
# Mamba(d_model=64, d_state=16, d_conv=4, expand=2): d_inner 128, dt_rank ceil(64/16) = 4.
MAMBA_SSM_MAMBA_64 = {
    "in_proj.weight": (256, 64),
    "conv1d.weight": (128, 1, 4),
    "conv1d.bias": (128,),
    "x_proj.weight": (36, 128),
    "dt_proj.weight": (128, 4),
    "dt_proj.bias": (128,),
    "A_log": (128, 16),
    "D": (128,),
    "out_proj.weight": (64, 128),
}
# Mamba2(d_model=64, d_state=16, d_conv=4, expand=2, headdim=16, ngroups=1): nheads 8,
# in_proj -> [z 128, x 128, B 16, C 16, dt 8] = 296, conv over [x, B, C] = 160 channels.
MAMBA_SSM_MAMBA2_64 = {
    "dt_bias": (8,),
    "A_log": (8,),
    "D": (8,),
    "in_proj.weight": (296, 64),
    "conv1d.weight": (160, 1, 4),
    "conv1d.bias": (160,),
    "norm.weight": (128,),
    "out_proj.weight": (64, 128),
}


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_mamba_block_matches_mamba_ssm_names_and_shapes():
    assert shapes(MambaBlock(64, d_state=16, d_conv=4, expand=2)) == MAMBA_SSM_MAMBA_64


def test_mamba2_block_matches_mamba_ssm_names_and_shapes():
    assert shapes(Mamba2Block(64, d_state=16, d_conv=4, expand=2, headdim=16)) == MAMBA_SSM_MAMBA2_64


def test_mamba_block_equals_mambapy_with_same_state_dict():
    mambapy = pytest.importorskip("mambapy.mamba")
    torch.manual_seed(0)
    ours = MambaBlock(64, d_state=16, d_conv=4, expand=2).eval()
    theirs = mambapy.MambaBlock(mambapy.MambaConfig(d_model=64, n_layers=1, d_state=16, expand_factor=2, d_conv=4)).eval()
    theirs.load_state_dict(ours.state_dict())  # strict: same keys, same shapes
    x = torch.randn(2, 23, 64)
    with torch.no_grad():
        expected = theirs(x)
        for name in ("chunked", "ref"):
            ours.backend = name
            torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls,kw", [(MambaBlock, {}), (Mamba2Block, {"d_state": 8, "headdim": 8})])
def test_block_backends_agree(cls, kw):
    torch.manual_seed(0)
    block = cls(32, **kw).eval()
    x = torch.randn(2, 19, 32)
    with torch.no_grad():
        block.backend = "ref"
        ref = block(x)
        block.backend = "chunked"
        torch.testing.assert_close(block(x), ref, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- CUDA kernels (skip cleanly on CPU)

needs_cuda = pytest.mark.cuda  # skipped without CUDA by tests/conftest.py


@needs_cuda
def test_cuda_selective_scan_equals_reference():
    pytest.importorskip("mamba_ssm")
    assert scan_cuda.available("mamba1")
    ts = [t.cuda() for t in mamba1_inputs(length=64)]
    torch.testing.assert_close(
        call_mamba1(scan_cuda.selective_scan_cuda, ts), call_mamba1(scan_ref.selective_scan_ref, ts), atol=1e-4, rtol=1e-4
    )


@needs_cuda
def test_cuda_ssd_scan_equals_reference():
    pytest.importorskip("mamba_ssm")
    assert scan_cuda.available("mamba2")
    ts = [t.cuda() for t in ssd_inputs(length=64, headdim=8, nstate=16)]
    torch.testing.assert_close(
        call_ssd(scan_cuda.ssd_scan_cuda, ts, chunk_size=32), call_ssd(scan_ref.ssd_scan_ref, ts), atol=1e-3, rtol=1e-3
    )


@needs_cuda
def test_cuda_mamba_ssm_block_equals_ours():
    mamba_ssm = pytest.importorskip("mamba_ssm")
    torch.manual_seed(0)
    ours = MambaBlock(64).cuda().eval()
    theirs = mamba_ssm.Mamba(d_model=64, d_state=16, d_conv=4, expand=2).cuda().eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 50, 64, device="cuda")
    with torch.no_grad():
        ours.backend = "ref"
        torch.testing.assert_close(theirs(x), ours(x), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- the bidirectional mixer


def test_reverse_within_length():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    rev = reverse_within_length(mask)
    assert rev.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]
    assert (rev.gather(1, rev) == torch.arange(5)).all()  # its own inverse


@pytest.mark.parametrize("block", ["mamba1", "mamba2"])
def test_mixer_equals_per_jet_loop(block):
    torch.manual_seed(0)
    C = 16
    mixer = BiMambaMixer(C, num_heads=2, block=block).eval()
    n_real = [9, 4, 1]
    x = torch.randn(3, 11, C)
    mask = torch.arange(11)[None] < torch.tensor(n_real)[:, None]
    with torch.no_grad():
        y = mixer(x, mask)
        for b, n in enumerate(n_real):
            jet = x[b : b + 1, :n]
            expected = mixer.forward_block(jet) + mixer.backward_block(jet.flip(1)).flip(1)
            torch.testing.assert_close(y[b : b + 1, :n], expected, atol=1e-5, rtol=1e-5)
        assert (y[~mask] == 0).all()


@pytest.mark.parametrize("name", ["mamba", "mamba2"])
def test_mixer_is_order_sensitive(name):
    torch.manual_seed(0)
    mixer = build_mixer(name, embed_dim=16, num_heads=2).eval()
    x = torch.randn(1, 10, 16)
    mask = torch.ones(1, 10, dtype=torch.bool)
    perm = torch.randperm(10)
    with torch.no_grad():
        y = mixer(x, mask)
        y_perm = mixer(x[:, perm], mask)
    # A set function would give y_perm == y[:, perm]; a sequence model does not.
    assert not torch.allclose(y_perm, y[:, perm], atol=1e-4)


def test_mixer_follows_global_backend_switch():
    torch.manual_seed(0)
    mixer = build_mixer("mamba", embed_dim=16, num_heads=2).eval()
    x, mask = torch.randn(2, 9, 16), torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    before = config.mamba_backend()
    try:
        outs = {}
        for name in ("ref", "chunked", "auto"):
            config.set_mamba_backend(name)
            with torch.no_grad():
                outs[name] = mixer(x, mask)
        torch.testing.assert_close(outs["chunked"], outs["ref"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(outs["auto"], outs["chunked"])
    finally:
        config.set_mamba_backend(before)


def test_mixer_ignores_bias_and_says_so():
    mixer = build_mixer("mamba", embed_dim=16, num_heads=2).eval()
    assert mixer.uses_bias is False
    x, mask = torch.randn(2, 6, 16), torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x, mask, torch.randn(2, 2, 6, 6)), mixer(x, mask, None))


def test_unknown_block_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mamba block"):
        BiMambaMixer(16, 2, block="mamba3")
