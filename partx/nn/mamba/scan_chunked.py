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
rescaling, no overflow), and about 2x faster than the reference loop (numbers in docs/mamba.md).

Same call signatures and layouts as ``scan_ref`` (and so as mamba-ssm's kernels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
    u, delta, z (B, D, L); A (D, N); B, C (B, N, L); D, delta_bias (D,) -> y (B, D, L)."""
    dtype = u.dtype
    batch, dim, length = u.shape
    nstate = A.shape[1]
    dl = prepare_delta(delta, delta_bias, delta_softplus, bias_dim=1)  # (B, D, L) fp32
    u32, A32 = u.float(), A.float()
    T = max(1, min(chunk_size, length))
    # Time-major layout (B, L, D[, N]): one step's state is a contiguous (D, N) slab per jet.
    dlt = dl.transpose(1, 2)  # (B, L, D)
    dxt = (dl * u32).transpose(1, 2)  # delta * u
    Bt, Ct = B.float().transpose(1, 2), C.float().transpose(1, 2)  # (B, L, N)
    # With autograd we must not write into a preallocated buffer; without it we do, saving a copy.
    track = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C, delta_bias) if t is not None)

    rows = max(1, min(MAX_ROWS, BLOCK_ELEMS // (T * dim * nstate)))
    ys, last = [], []
    for b0 in range(0, batch, rows):
        b1 = min(batch, b0 + rows)
        h = u32.new_zeros(b1 - b0, dim, nstate)
        ys_block = []
        for t0 in range(0, length, T):
            t1 = min(length, t0 + T)
            decay = torch.exp(dlt[b0:b1, t0:t1, :, None] * A32)  # (b, T, D, N), one vectorised exp
            inp = dxt[b0:b1, t0:t1, :, None] * Bt[b0:b1, t0:t1, None, :]  # (b, T, D, N) = delta u B
            if track:
                hs = []
                for i in range(t1 - t0):
                    h = torch.addcmul(inp[:, i], decay[:, i], h)
                    hs.append(h)
                hs = torch.stack(hs, dim=1)
            else:
                hs = inp  # overwritten in place, step by step: hs[:, i] = decay_i * hs[:, i-1] + inp_i
                for i in range(t1 - t0):
                    torch.addcmul(inp[:, i], decay[:, i], h, out=hs[:, i])
                    h = hs[:, i]
            ys_block.append((hs * Ct[b0:b1, t0:t1, None, :]).sum(-1))  # (b, T, D) = sum_n C_t[n] h_t[:, n]
        ys.append(torch.cat(ys_block, dim=1) if ys_block else u32.new_zeros(b1 - b0, 0, dim))
        last.append(h)
    y = torch.cat(ys, dim=0).transpose(1, 2)  # (B, D, L)
    y = finish_mamba1(y, u32, D, z).to(dtype)
    return (y, torch.cat(last, dim=0)) if return_last_state else y


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
