"""The fused bidirectional Mamba path (partx.nn.mamba.fused) against the two-call mixer and the reference scans.

Tolerances (float32): forward outputs are O(1) and differ from the two-call mixer only by summation order
(the time-major conv adds its taps in another order than oneDNN, matmuls block differently), a few ulp
per op accumulated over ~10 ops: 1e-5 absolute/relative. Gradients add up over all tokens and jets of the
batch and run through the adjoint recurrence: 1e-4, as the scan tests of tests/test_mamba.py.
"""

import pytest
import torch

from partx.nn.mamba import fused, scan_chunked, scan_ref
from partx.nn.mamba.mixer import BiMambaMixer

LENGTHS = [11, 4, 1, 0, 11, 7, 9]  # a full jet, short ones, an empty one, unsorted


def _batch(C: int, N: int = 11, lengths=LENGTHS, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), N, C, generator=g)
    mask = torch.arange(N)[None] < torch.tensor(lengths)[:, None]
    return x, mask


def _mixer(block: str, C: int = 16, **kw) -> BiMambaMixer:
    torch.manual_seed(1)
    m = BiMambaMixer(C, num_heads=2, block=block, backend="chunked", **kw)
    with torch.no_grad():  # off the initial values (D = 1, norm weight = 1), so a swapped direction shows
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


@pytest.fixture(params=["one pass", "many passes"])
def passes(request, monkeypatch):
    """Whole batch in one pass, or cut into groups of 1-2 jets and scan blocks of one jet."""
    if request.param == "many passes":
        monkeypatch.setattr(fused, "PASS_ELEMS", 2 * 32 * 20)  # 20 tokens per pass at d_inner = 32
        monkeypatch.setattr(scan_chunked, "BLOCK_ELEMS", 1)  # one jet per scan block
    return request.param


@pytest.mark.parametrize("block", ["mamba1", "mamba2"])
def test_fused_equals_two_call_mixer_outputs_and_gradients(block, passes):
    fast, slow = _mixer(block), _mixer(block, fused=False)
    x, mask = _batch(16)
    xf, xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    yf, ys = fast(xf, mask), slow(xs, mask)
    torch.testing.assert_close(yf, ys, atol=1e-5, rtol=1e-5)
    assert (yf[~mask] == 0).all()
    w = torch.randn_like(yf)
    (yf * w).sum().backward()
    (ys * w).sum().backward()
    torch.testing.assert_close(xf.grad, xs.grad, atol=1e-4, rtol=1e-4)
    assert (xf.grad[~mask] == 0).all()  # padding receives nothing
    for (name, pf), ps in zip(fast.named_parameters(), slow.parameters()):
        assert pf.grad is not None and pf.grad.abs().sum() > 0, name
        torch.testing.assert_close(pf.grad, ps.grad, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("block", ["mamba1", "mamba2"])
def test_fused_equals_reference_scan_mixer(block):
    """The oracle: the same weights through the sequential reference scans (two block calls)."""
    fast = _mixer(block).eval()
    ref = _mixer(block)
    for b in (ref.forward_block, ref.backward_block):
        b.backend = "ref"
    x, mask = _batch(16)
    with torch.no_grad():
        torch.testing.assert_close(fast(x, mask), ref(x, mask), atol=3e-5, rtol=3e-5)  # SSD: as test_mamba's 5e-5


def test_fused_is_used_only_for_the_chunked_backend(monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "bidirectional", lambda *a, **k: calls.append(1) or torch.zeros_like(a[2]))
    x, mask = _batch(16)
    _mixer("mamba1")(x, mask)
    assert calls == [1]
    m = _mixer("mamba1")
    for b in (m.forward_block, m.backward_block):
        b.backend = "ref"
    m(x, mask)
    assert calls == [1]


def test_grouped_time_major_scan_with_lengths_equals_reference():
    """Two channel groups (each its own B, C) and per-jet lengths: each group is the reference Mamba-1 scan
    on its channels, at every position within the jet's length."""
    g = torch.Generator().manual_seed(3)
    batch, L, D, N = 4, 13, 6, 5
    dl = torch.rand(batch, L, 2 * D, generator=g) * 0.5 + 0.01
    u = torch.randn(batch, L, 2 * D, generator=g)
    A = -torch.rand(2 * D, N, generator=g) * 3 - 0.1
    Bt, Ct = torch.randn(2, batch, L, 2, N, generator=g)
    lengths = [13, 9, 9, 2]
    args = [t.clone().requires_grad_() for t in (dl, u, A, Bt, Ct)]
    y = scan_chunked._BlockedScan.apply(args[0], args[0] * args[1], args[2], args[3], args[4], 4, lengths, 2)[0]
    refs = [t.clone().requires_grad_() for t in (dl, u, A, Bt, Ct)]
    ys = []
    for grp in range(2):
        ch = slice(grp * D, (grp + 1) * D)
        ys.append(scan_ref.selective_scan_ref(
            refs[1][..., ch].transpose(1, 2), refs[0][..., ch].transpose(1, 2), refs[2][ch],
            refs[3][:, :, grp].transpose(1, 2), refs[4][:, :, grp].transpose(1, 2)).transpose(1, 2))
    y_ref = torch.cat(ys, dim=-1)
    valid = (torch.arange(L)[None] < torch.tensor(lengths)[:, None])[..., None].float()
    torch.testing.assert_close(y * valid, y_ref * valid, atol=1e-5, rtol=1e-5)
    w = torch.randn(batch, L, 2 * D, generator=g) * valid  # no gradient from past a jet's length
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    for name, a, r in zip(["dl", "u", "A", "B", "C"], args, refs):
        torch.testing.assert_close(a.grad, r.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_committed_checkpoint_loads_and_gives_the_same_outputs():
    """models/MambaParT_gen-small_full.pt (trained with the two-call mixer): strict load, same outputs."""
    from partx.models_store import load
    from partx.models_store.loader import data_config_path
    from partx.perf.harness import load_data_config
    from partx.perf.inputs import as_forward_args, synthetic_inputs

    model, card = load("MambaParT_gen-small_full")  # strict load_state_dict, sha256 checked
    mixers = [m for m in model.modules() if isinstance(m, BiMambaMixer)]
    assert mixers and all(m.fused for m in mixers)
    dc = load_data_config(str(data_config_path(card)))
    args = as_forward_args(synthetic_inputs(dc, 40, 5, fill=0.4, seed=2), dc.input_names)  # padded jets
    with torch.no_grad():
        out_fused = model(*args)
        for m in mixers:
            m.fused = False
        out_two = model(*args)
    torch.testing.assert_close(out_fused, out_two, atol=1e-5, rtol=1e-5)
