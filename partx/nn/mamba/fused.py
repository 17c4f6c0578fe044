"""Both directions of ``BiMambaMixer`` in one pass (CPU fast path; same result as two block calls).

The forward and reverse blocks keep their own mamba-ssm-compatible parameters (state_dict unchanged);
only the computation is merged. The reverse direction's input is the jet reversed within its length
(``reverse_within_length``); every op of a block is per token or causal, so running the reverse block on
reversed tokens and un-reversing its output is what the two-call mixer does. Here the two directions are
stacked **along channels**, time-aligned position by position (forward channels see token t, reverse
channels token rev(t)):

* one depthwise causal conv over the 2 d_inner (Mamba-1) / 2 (d_inner + 2 G N) (Mamba-2) channels, the
  two blocks' conv weights concatenated;
* one scan over 2 d_inner channels: Mamba-1 with two channel groups (group 0 reads the forward B/C, group
  1 the reverse ones: mamba-ssm's grouped B/C), Mamba-2 with 2 H heads in 2 G groups;
* softplus, skip, gate and (Mamba-2) the gated RMSNorm, once over both.

The projections (in_proj, x_proj, out_proj) stay per direction (the blocks' own Linear modules, so
int8-swapped Linears keep working): concatenating them would need a block-diagonal weight (twice the
FLOPs) or a copy of the activations of the same size as what is saved.

Padding and batch size: the jets are sorted by length and cut into groups of ~PASS_ELEMS / (2 d_inner)
tokens, each run trimmed to its own longest jet (so intermediates stay ~2 MB and little padding is
computed); inside a group the blocked Mamba-1 scan also stops each block of jets at its longest one
(``scan_chunked._forward(lengths=...)``). Positions past a jet's length only ever feed padded outputs,
which the mixer zeroes, so skipping them changes nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from partx.nn.mamba import scan_chunked
from partx.nn.mamba.block import Mamba2Block, MambaBlock, gated_rmsnorm


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, C), index (B, N) -> x[b, index[b, i], :]."""
    return x.gather(1, index[..., None].expand_as(x))


def causal_conv_time_major(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Depthwise causal conv in time-major layout: x (B, L, Ch), weight (Ch, 1, K), bias (Ch,) -> (B, L, Ch).

    out[t] = bias + sum_k weight[:, k] x[t + k - (K - 1)] (x = 0 before the start): what
    ``block.causal_depthwise_conv`` computes on (B, Ch, L), without transposing the activations."""
    K, length = weight.shape[-1], x.shape[1]
    xp = F.pad(x, (0, 0, K - 1, 0))
    w = weight[:, 0, :].t()  # (K, Ch)
    out = xp[:, K - 1 :] * w[K - 1]
    if bias is not None:
        out = out + bias
    for k in range(K - 1):
        out = torch.addcmul(out, xp[:, k : k + length], w[k])
    return out


def mamba1_pair(fwd: MambaBlock, bwd: MambaBlock, x: torch.Tensor, xr: torch.Tensor, lengths: list[int] | None) -> torch.Tensor:
    """Scan outputs of both Mamba-1 blocks, channels stacked: x (B, L, C) and its reversal xr -> (B, L, 2 d_inner).

    ``lengths`` (descending or not): per-jet lengths the scan may stop at (see module docstring)."""
    d, R, N = fwd.d_inner, fwd.dt_rank, fwd.d_state
    xz_f, xz_b = fwd.in_proj(x), bwd.in_proj(xr)  # (B, L, 2 d): [x, z]
    xs = torch.cat([xz_f[..., :d], xz_b[..., :d]], dim=-1)
    z = torch.cat([xz_f[..., d:], xz_b[..., d:]], dim=-1)
    conv_b = None if fwd.conv1d.bias is None else torch.cat([fwd.conv1d.bias, bwd.conv1d.bias])
    xs = F.silu(causal_conv_time_major(xs, torch.cat([fwd.conv1d.weight, bwd.conv1d.weight]), conv_b))
    dbc_f, dbc_b = fwd.x_proj(xs[..., :d]), bwd.x_proj(xs[..., d:])  # (B, L, R + 2 N)
    dt = torch.cat([dbc_f[..., :R] @ fwd.dt_proj.weight.t(), dbc_b[..., :R] @ bwd.dt_proj.weight.t()], dim=-1)
    Bt = torch.stack([dbc_f[..., R : R + N], dbc_b[..., R : R + N]], dim=2).float()  # (B, L, 2, N)
    Ct = torch.stack([dbc_f[..., R + N :], dbc_b[..., R + N :]], dim=2).float()
    dl = F.softplus(dt.float() + torch.cat([fwd.dt_proj.bias, bwd.dt_proj.bias]).float())  # (B, L, 2 d)
    A = -torch.exp(torch.cat([fwd.A_log, bwd.A_log]).float())  # (2 d, N)
    xs32 = xs.float()
    y = scan_chunked.selective_scan_time_major(dl, dl * xs32, A, Bt, Ct, lengths=lengths)
    y = (y + torch.cat([fwd.D, bwd.D]).float() * xs32) * F.silu(z.float())
    return y.to(x.dtype)


def mamba2_pair(fwd: Mamba2Block, bwd: Mamba2Block, x: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    """Gated-normed scan outputs of both Mamba-2 blocks, channels stacked: (B, L, C) x2 -> (B, L, 2 d_inner)."""
    batch, length, _ = x.shape
    d, H, P, G, N = fwd.d_inner, fwd.nheads, fwd.headdim, fwd.ngroups, fwd.d_state
    gn = G * N
    sizes = [d, d + 2 * gn, H]
    z_f, xbc_f, dt_f = fwd.in_proj(x).split(sizes, dim=-1)
    z_b, xbc_b, dt_b = bwd.in_proj(xr).split(sizes, dim=-1)
    parts = [d, gn, gn]  # x, B, C: stacked part by part so that x, B and C each stay contiguous

    def interleave(f: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
        return torch.cat([t for pair in zip(f.split(parts, dim), b.split(parts, dim)) for t in pair], dim=dim)

    w = interleave(fwd.conv1d.weight, bwd.conv1d.weight, 0)
    cb = None if fwd.conv1d.bias is None else interleave(fwd.conv1d.bias, bwd.conv1d.bias, 0)
    xbc = F.silu(causal_conv_time_major(interleave(xbc_f, xbc_b, -1), w, cb))
    xs, B, C = xbc.split([2 * d, 2 * gn, 2 * gn], dim=-1)
    cat = lambda name: torch.cat([getattr(fwd, name), getattr(bwd, name)])  # noqa: E731
    kw = {} if fwd.chunk_size is None else {"chunk_size": fwd.chunk_size}
    y = scan_chunked.ssd_scan_chunked(
        xs.reshape(batch, length, 2 * H, P), torch.cat([dt_f, dt_b], dim=-1), -torch.exp(cat("A_log").float()),
        B.reshape(batch, length, 2 * G, N), C.reshape(batch, length, 2 * G, N),
        D=cat("D"), dt_bias=cat("dt_bias"), dt_softplus=True, **kw,
    )  # (B, L, 2 H, P): heads of the forward block first
    y = gated_rmsnorm(y.flatten(-2), torch.cat([z_f, z_b], dim=-1), torch.cat([fwd.norm.weight, bwd.norm.weight]),
                      fwd.norm.group_size, fwd.norm.eps)
    return y.to(x.dtype)


#: Elements of one (tokens, 2 d_inner) intermediate per pass of the fused mixer (2 MB of fp32): the batch is
#: cut into groups of jets of ~PASS_ELEMS / (2 d_inner) tokens (1024 at d_inner = 256), so intermediates
#: stay cache-sized and far below glibc's mmap threshold (larger temporaries are mmap-ed and
#: page-faulted afresh on every call). Measured in docs/mamba.md ("Fused path"); None = no cut.
PASS_ELEMS = 1 << 19


def bidirectional(fwd, bwd, x: torch.Tensor, mask: torch.Tensor, rev: torch.Tensor, tokens_per_pass: int | None = None) -> torch.Tensor:
    """fwd(x) + unreverse(bwd(reverse(x))) as the two-call mixer, fused. x (B, N, C) with padding zeroed,
    mask (B, N), rev = ``reverse_within_length(mask)`` -> (B, N, C); padded positions are not meaningful
    (the caller zeroes them).

    Jets are sorted by length (longest first) and cut into groups of ~``tokens_per_pass`` tokens; each
    group runs trimmed to its own longest jet, so padding costs only within a group of similar lengths."""
    batch, full = mask.shape
    tokens = tokens_per_pass or max(1, PASS_ELEMS // (2 * fwd.d_inner))
    lengths = mask.sum(dim=1)
    order = None
    if batch > 1 and bool((lengths != lengths[0]).any()):
        order = torch.argsort(lengths, descending=True, stable=True)
        x, rev, lengths = x[order], rev[order], lengths[order]
    lens = lengths.tolist()
    outs, b0 = [], 0
    while b0 < batch:
        n = lens[b0]  # the longest jet of this group
        b1 = min(batch, b0 + max(1, tokens // max(n, 1)))
        if n == 0:
            outs.append(x.new_zeros(b1 - b0, full, x.shape[-1]))
        else:
            out = _pass(fwd, bwd, x[b0:b1, :n], rev[b0:b1, :n], lens[b0:b1] if order is not None else None)
            outs.append(F.pad(out, (0, 0, 0, full - n)))
        b0 = b1
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    return out if order is None else out[torch.argsort(order)]


def _pass(fwd, bwd, x: torch.Tensor, rev: torch.Tensor, lengths: list[int] | None) -> torch.Tensor:
    """One group of jets, trimmed: x (b, n, C), rev (b, n) -> (b, n, C)."""
    xr = gather_tokens(x, rev)
    if isinstance(fwd, MambaBlock):
        y = mamba1_pair(fwd, bwd, x, xr, lengths)
    else:
        y = mamba2_pair(fwd, bwd, x, xr)
    d = fwd.d_inner
    return fwd.out_proj(y[..., :d]) + gather_tokens(bwd.out_proj(y[..., d:]), rev)
