"""Fast pure-PyTorch CPU selective scans: chunked over time, so most of the work is a few big tensor
ops per chunk instead of several tiny ops per time step (the reference) or log2(L) passes over
(B, L, D, N) tensors (mambapy's parallel scan).

Mamba-2 / SSD (``ssd_scan_chunked``): the decay is one scalar per head, so inside a chunk of T steps
the recurrence is exactly a masked "attention" ``y = (C B^T * Lmask) (dt x)`` with
``Lmask[t, s] = exp(S_t - S_s)`` for s <= t (S = cumulative log-decay), i.e. batched matmuls; each
chunk hands its final state (H, P, N) to the next one by a short sequential loop over chunks.
``exp`` is only ever taken of a non-positive number, so the form is stable for any decay.

Mamba-1 (``selective_scan_chunked``): the decay is per (channel d, state n), so the SSD mask would be a
(D, N, T, T) tensor, T times the size of the states themselves, and the alternative factoring
``exp(S_t - S_s) = exp(S_t) exp(-S_s)`` overflows for fast decays and needs cumsums, which are slow on
CPU (measured: a cumsum over time costs ~20x an elementwise op of the same size). So the Mamba-1 path is
a *blocked* scan instead: for a block of (jets, T time steps) sized to stay in the CPU cache (~4 MB), the
expensive parts — ``exp(delta A)``, the ``delta u B`` outer products and the ``C . h`` contraction — are
single vectorised ops over the whole block, and only the recurrence itself, one fused multiply-add
``h = decay * h + input`` over a (jets, D, N) slab, runs per step. It is the exact recurrence (no
rescaling, no overflow), and about 2x faster than the reference loop (numbers in docs/mamba.md). Its
gradient is hand-written (``_BlockedScan``): autograd through the step loop costs O(T) per step and
dominated long sequences (thousands of hits); the adjoint recurrence is the same loop run backwards.

Same call signatures and layouts as ``scan_ref`` (and so as mamba-ssm's kernels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from partx import config
from partx.nn.mamba.scan_ref import finish_mamba1, finish_ssd, prepare_delta

#: Target size (elements) of one (jets, T, D, N) block of Mamba-1 intermediates: 4 MB of fp32 (cache-sized;
#: 1-8 MB measured within noise of each other here, one pass over the whole (B, L, D, N) 2-4x slower).
BLOCK_ELEMS = 1 << 20
#: Jets per Mamba-1 block when D*N is small; caps the number of Python-level steps (B / rows * L).
MAX_ROWS = 64


def _pad_time(t: torch.Tensor, dim: int, length: int) -> torch.Tensor:
    """Zero-pad ``dim`` up to ``length``. Zero dt means decay 1 and no input: the state is untouched."""
    extra = length - t.shape[dim]
    if extra == 0:
        return t
    pad = [0, 0] * (t.dim() - 1 - dim) + [0, extra]
    return F.pad(t, pad)


def _rows(T: int, dim: int, nstate: int) -> int:
    return max(1, min(MAX_ROWS, BLOCK_ELEMS // (T * dim * nstate)))


def _chunk_terms(dlt, dxt, A32, Bt, t0: int, t1: int):
    """exp(delta A) and delta u B of one block of rows and time steps: (b, T, D, N) each, vectorised.
    Bt is (b, L, G, N): channel group g (channels g*D/G ... (g+1)*D/G - 1) reads B[:, :, g]."""
    decay = torch.exp(dlt[:, t0:t1, :, None] * A32)
    b, T, dim = dlt.shape[0], t1 - t0, dlt.shape[2]
    groups, nstate = Bt.shape[2], Bt.shape[3]
    inp = dxt[:, t0:t1].view(b, T, groups, dim // groups, 1) * Bt[:, t0:t1, :, None, :]
    return decay, inp.view(b, T, dim, nstate)


_compiled_terms = None


def _terms(dlt, dxt, A32, Bt, t0: int, t1: int):
    """``_chunk_terms``, through ``torch.compile`` when ``partx.config.mamba_compile()``: inductor fuses the
    broadcast multiply and exp into one vectorised loop (eager runs them as separate broadcast passes)."""
    global _compiled_terms
    if not config.mamba_compile() or torch.onnx.is_in_onnx_export():
        return _chunk_terms(dlt, dxt, A32, Bt, t0, t1)
    if _compiled_terms is None:
        _compiled_terms = torch.compile(_chunk_terms, dynamic=True)  # one kernel for every block shape
    return _compiled_terms(dlt, dxt, A32, Bt, t0, t1)


def _grouped(t: torch.Tensor, groups: int) -> torch.Tensor:
    """(b, T, D[, N]) -> (b, T, G, D/G[, N]) view."""
    return t.unflatten(2, (groups, -1))


def _block_lengths(lengths, batch: int, rows: int, length: int) -> list[int]:
    """Steps to scan for each block of ``rows`` jets: all ``length``, or the block's longest jet."""
    if lengths is None:
        return [length] * (-(-batch // rows))
    return [int(max(lengths[b0 : b0 + rows])) for b0 in range(0, batch, rows)]


def _scan_in_place(decay: torch.Tensor, inp: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """inp[:, i] <- decay[:, i] * h_{i-1} + inp[:, i] (h_{-1} = ``h``), step by step, in place; returns h_last."""
    for i in range(inp.shape[1]):
        torch.addcmul(inp[:, i], decay[:, i], h, out=inp[:, i])
        h = inp[:, i]
    return h


def _forward(dlt, dxt, A32, Bt, Ct, T: int, keep_starts: bool, lengths=None, rows: int | None = None):
    """The blocked scan without autograd: y (B, L, D), last state (B, D, N), and (if ``keep_starts``) the
    state entering every time chunk (B, n_chunks, D, N), all the backward pass needs to recompute a chunk.

    ``lengths`` (B,): a block of jets stops after its longest jet's length; y past it is zero and the
    "last" state is the one at that step (callers passing lengths must ignore both)."""
    batch, length, dim = dlt.shape
    nstate, groups = A32.shape[1], Bt.shape[2]
    rows = rows or _rows(T, dim, nstate)
    y = dlt.new_zeros(batch, length, dim) if lengths is not None else dlt.new_empty(batch, length, dim)
    last = dlt.new_empty(batch, dim, nstate)
    starts = dlt.new_empty(batch, -(-length // T), dim, nstate) if keep_starts else None
    for b0, stop in zip(range(0, batch, rows), _block_lengths(lengths, batch, rows, length)):
        b1 = min(batch, b0 + rows)
        h = dlt.new_zeros(b1 - b0, dim, nstate)
        for c, t0 in enumerate(range(0, stop, T)):
            t1 = min(stop, t0 + T)
            if keep_starts:
                starts[b0:b1, c] = h
            decay, hs = _terms(dlt[b0:b1], dxt[b0:b1], A32, Bt[b0:b1], t0, t1)
            h = _scan_in_place(decay, hs, h)  # hs now holds the states h_t
            y[b0:b1, t0:t1] = torch.einsum("btgdn,btgn->btgd", _grouped(hs, groups), Ct[b0:b1, t0:t1]).flatten(2)
        last[b0:b1] = h
    return y, last, starts


class _BlockedScan(torch.autograd.Function):
    """The Mamba-1 recurrence ``h_t = exp(dl_t A) h_{t-1} + dl_t u_t B_t``, ``y_t = C_t . h_t`` with a
    hand-written backward pass.

    Autograd through a per-step loop records several nodes per time step and, for every step, the
    backward of an indexing op materialises a zero gradient of its whole block (measured: 147 s for
    forward + backward of a Mamba-b encoder on 2 x 2000 hits). Here the forward runs without autograd and
    keeps only the state entering each chunk; the backward recomputes one chunk at a time and runs the
    adjoint recurrence ``g_t = C_t gy_t + exp(dl_{t+1} A) g_{t+1}`` backwards, the same in-place step loop,
    with every other gradient a vectorised contraction over the chunk.
    Inputs (fp32): dlt, dxt (B, L, D); A (D, N); Bt, Ct (B, L, G, N); ``lengths`` as ``_forward``
    (then no gradient may reach the last state). Outputs: y (B, L, D), h_last (B, D, N).
    """

    @staticmethod
    def forward(ctx, dlt, dxt, A32, Bt, Ct, T: int, lengths=None, rows: int | None = None):
        y, last, starts = _forward(dlt, dxt, A32, Bt, Ct, T, keep_starts=True, lengths=lengths, rows=rows)
        ctx.save_for_backward(dlt, dxt, A32, Bt, Ct, starts)
        ctx.T, ctx.lengths, ctx.rows = T, lengths, rows
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not as zeros
        return y, last

    @staticmethod
    def backward(ctx, gy, glast):
        dlt, dxt, A32, Bt, Ct, starts = ctx.saved_tensors
        T, lengths = ctx.T, ctx.lengths
        batch, length, dim = dlt.shape
        nstate, groups = A32.shape[1], Bt.shape[2]
        rows = ctx.rows or _rows(T, dim, nstate)
        gy = gy if gy is not None else torch.zeros_like(dlt)
        if lengths is not None:
            assert glast is None, "no gradient through the last state of a scan run with lengths"
        make = torch.empty_like if lengths is None else torch.zeros_like  # skipped steps get zero gradients
        g_dl, g_dx = make(dlt), make(dxt)
        g_B, g_C = make(Bt), make(Ct)
        g_A = torch.zeros_like(A32)
        for b0, stop in zip(range(0, batch, rows), _block_lengths(lengths, batch, rows, length)):
            b1 = min(batch, b0 + rows)
            dl, dx, Bb, Cb, gyb = dlt[b0:b1], dxt[b0:b1], Bt[b0:b1], Ct[b0:b1], gy[b0:b1]
            # gradient reaching the state at the end of the current chunk from everything after it
            carry = glast[b0:b1].clone() if glast is not None else dl.new_zeros(b1 - b0, dim, nstate)
            for c, t0 in reversed(list(enumerate(range(0, stop, T)))):
                t1 = min(stop, t0 + T)
                h0 = starts[b0:b1, c]
                decay, hs = _terms(dl, dx, A32, Bb, t0, t1)
                _scan_in_place(decay, hs, h0)
                gyg = _grouped(gyb[:, t0:t1], groups)  # (b, T, G, D/G)
                g_C[b0:b1, t0:t1] = torch.einsum("btgd,btgdn->btgn", gyg, _grouped(hs, groups))
                # dL/dh_t through y_t: (b, T, D, N)
                gh = (gyg[..., None] * Cb[:, t0:t1, :, None, :]).flatten(2, 3)
                # adjoint recurrence, backwards in time: gh_t += exp(dl_{t+1} A) gh_{t+1}
                torch.add(gh[:, -1], carry, out=gh[:, -1])
                for i in range(t1 - t0 - 2, -1, -1):
                    torch.addcmul(gh[:, i], decay[:, i + 1], gh[:, i + 1], out=gh[:, i])
                carry = decay[:, 0] * gh[:, 0]  # dL/dh entering this chunk
                # h_{t-1} for every step of the chunk (hs shifted by one, the chunk's start state first)
                h_prev = torch.cat([h0[:, None], hs[:, :-1]], dim=1)
                g_arg = gh * h_prev * decay  # dL/d(dl_t A) through exp
                g_dl[b0:b1, t0:t1] = torch.einsum("btdn,dn->btd", g_arg, A32)
                g_A += torch.einsum("btdn,btd->dn", g_arg, dl[:, t0:t1])
                ghg = _grouped(gh, groups)
                g_dx[b0:b1, t0:t1] = torch.einsum("btgdn,btgn->btgd", ghg, Bb[:, t0:t1]).flatten(2)
                g_B[b0:b1, t0:t1] = torch.einsum("btgdn,btgd->btgn", ghg, _grouped(dx[:, t0:t1], groups))
        return g_dl, g_dx, g_A, g_B, g_C, None, None, None


def selective_scan_chunked(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int = 16,
):
    """Mamba-1 selective scan, blocked over (jets, time chunks). Shapes as ``scan_ref.selective_scan_ref``:
    u, delta, z (B, D, L); A (D, N); B, C (B, N, L); D, delta_bias (D,) -> y (B, D, L).

    Differentiable through ``_BlockedScan`` (its own backward pass) when any input requires grad."""
    dtype = u.dtype
    length = u.shape[-1]
    dl = prepare_delta(delta, delta_bias, delta_softplus, bias_dim=1)  # (B, D, L) fp32
    u32, A32 = u.float(), A.float()
    T = max(1, min(chunk_size, length))
    # Time-major layout (B, L, D[, N]): one step's state is a contiguous (D, N) slab per jet.
    dlt = dl.transpose(1, 2).contiguous()  # (B, L, D)
    dxt = (dl * u32).transpose(1, 2).contiguous()  # delta * u
    # (B, L, 1, N): one channel group
    Bt, Ct = (t.float().transpose(1, 2).unsqueeze(2).contiguous() for t in (B, C))
    track = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C, delta_bias) if t is not None)
    if track:
        y, last = _BlockedScan.apply(dlt, dxt, A32, Bt, Ct, T)
    else:
        y, last, _ = _forward(dlt, dxt, A32, Bt, Ct, T, keep_starts=False)
    y = finish_mamba1(y.transpose(1, 2), u32, D, z).to(dtype)  # (B, D, L)
    return (y, last) if return_last_state else y


def selective_scan_time_major(
    dlt: torch.Tensor,
    dxt: torch.Tensor,
    A: torch.Tensor,
    Bt: torch.Tensor,
    Ct: torch.Tensor,
    lengths: list[int] | None = None,
    chunk_size: int = 16,
) -> torch.Tensor:
    """The Mamba-1 recurrence alone, in the blocked scan's own layout (no transposes): ``y_t = C_t . h_t``.

    Args:
        dlt: (B, L, D) fp32 delta after bias and softplus.  dxt: (B, L, D) fp32 delta * u.
        A: (D, N).  Bt, Ct: (B, L, G, N) fp32, channel group g = channels [g D/G, (g+1) D/G).
        lengths: per-jet lengths; each block of jets stops at its longest (outputs past it are zero).
    Returns:
        y (B, L, D) fp32, without the D skip and the gate (the caller adds them).
    """
    T = max(1, min(chunk_size, dlt.shape[1]))
    args = (dlt.contiguous(), dxt.contiguous(), A.float(), Bt.contiguous(), Ct.contiguous(), T)
    if torch.is_grad_enabled() and any(t.requires_grad for t in args[:5]):
        return _BlockedScan.apply(*args, lengths)[0]
    return _forward(*args, keep_starts=False, lengths=lengths)[0]


def ssd_scan_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    return_final_states: bool = False,
    chunk_size: int = 32,  # fastest of 16/32/64 at L = 128 on the CPUs here
):
    """Mamba-2 (SSD) scan, chunked. Shapes as ``scan_ref.ssd_scan_ref``:
    x, z (B, L, H, P); dt (B, L, H); A (H,); B, C (B, L, G, N); D (H,) or (H, P) -> y (B, L, H, P)."""
    dtype = x.dtype
    batch, length, nheads, headdim = x.shape
    groups, nstate = B.shape[2], B.shape[3]
    T = max(1, min(chunk_size, length))
    nc = -(-length // T)
    Lp = nc * T
    x32 = x.float()
    dt = prepare_delta(dt, dt_bias, dt_softplus, bias_dim=2)  # (B, L, H)
    # Chunked, heads before time: (B, nc, H, T, ...).
    xdt = _pad_time(x32 * dt[..., None], 1, Lp).view(batch, nc, T, nheads, headdim).transpose(2, 3)
    S = _pad_time(dt * A.float(), 1, Lp).view(batch, nc, T, nheads).transpose(2, 3).cumsum(-1)  # (B, nc, H, T)
    Bc = _pad_time(B.float(), 1, Lp).view(batch, nc, T, groups, nstate).transpose(2, 3)  # (B, nc, G, T, N)
    Cc = _pad_time(C.float(), 1, Lp).view(batch, nc, T, groups, nstate).transpose(2, 3)
    rep = nheads // groups

    # Intra-chunk: masked decaying "attention" C_t . B_s exp(S_t - S_s), s <= t.
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    seg = (S[..., :, None] - S[..., None, :]).masked_fill(~causal, float("-inf"))  # upper part -> exp = 0
    CB = (Cc @ Bc.transpose(-1, -2)).repeat_interleave(rep, dim=2)  # (B, nc, H, T, T)
    y = (CB * torch.exp(seg)) @ xdt  # (B, nc, H, T, P)

    # State each chunk ends with when started from zero: sum_s exp(S_T - S_s) (dt x)_s (outer) B_s.
    to_end = torch.exp(S[..., -1:] - S)  # (B, nc, H, T)
    Bh = Bc.repeat_interleave(rep, dim=2)  # (B, nc, H, T, N)
    local = (xdt * to_end[..., None]).transpose(-1, -2) @ Bh  # (B, nc, H, P, N)
    # Inter-chunk: pass states along (nc small steps on (B, H, P, N)).
    chunk_decay = torch.exp(S[..., -1])  # (B, nc, H)
    h = x32.new_zeros(batch, nheads, headdim, nstate)
    starts = []
    for c in range(nc):
        starts.append(h)
        h = chunk_decay[:, c, :, None, None] * h + local[:, c]
    h0 = torch.stack(starts, dim=1)  # (B, nc, H, P, N): state entering each chunk
    Ch = Cc.repeat_interleave(rep, dim=2)  # (B, nc, H, T, N)
    y = y + (Ch @ h0.transpose(-1, -2)) * torch.exp(S)[..., None]  # contribution of the carried state

    y = y.transpose(2, 3).reshape(batch, Lp, nheads, headdim)[:, :length]
    y = finish_ssd(y, x32, D, z).to(dtype)
    return (y, h) if return_final_states else y
