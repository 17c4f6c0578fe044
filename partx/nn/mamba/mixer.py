"""Bidirectional Mamba particle mixer (Vim-style) behind the common mixer interface.

``BiMambaMixer(x (B, N, C), mask (B, N) bool, bias=None) -> (B, N, C)``: one Mamba block scans the
jet's particles in sequence order, a second block (own weights) scans them in reverse, and the two
outputs are **summed** (each block is then exactly a unidirectional mamba-ssm ``Mamba``/``Mamba2``,
and a checkpoint of one loads into either direction unchanged).

Pairwise bias U: Mamba has no attention logits, so U has nowhere to enter; ``uses_bias = False`` tells
the ParT skeleton to skip computing it, and a ``bias`` passed anyway is ignored. Pairwise information
reaches the model only through the particle *order* (see ``partx.nn.ordering``): a scan is a sequence
model, so the order in which particles are fed matters.

Padding (real particles first, padding after, as the skeleton guarantees):
  * forward scan: padded inputs are zeroed, and everything in a block is causal (depthwise conv with
    left context only, the recurrence), so tokens after the real ones cannot reach them;
  * reverse scan: reversing the whole padded row would put the padding *first*; instead each jet is
    reversed within its own valid length n_b (position i < n_b -> n_b - 1 - i, padding stays in place),
    scanned, and un-reversed with the same index map (it is its own inverse).
Hence "pad more, same outputs" holds exactly, and jets of a batch never mix (every op is per jet).
Outputs at padded positions are set to zero.
"""

from __future__ import annotations

import torch
from torch import nn

from partx.nn.mamba import fused as fused_path
from partx.nn.mamba.backend import resolve
from partx.nn.mamba.block import Mamba2Block, MambaBlock
from partx.nn.options import strict_options


def reverse_within_length(mask: torch.Tensor) -> torch.Tensor:
    """Index map (B, N) reversing the first n_b = mask[b].sum() positions of each row, padding kept last.

    Applying it twice gives the identity, so the same map un-reverses."""
    n = mask.sum(dim=1, keepdim=True)  # (B, 1)
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(pos < n, n - 1 - pos, pos)


gather_tokens = fused_path.gather_tokens


class BiMambaMixer(nn.Module):
    """Bidirectional Mamba over the particles of each jet.

    Args:
        embed_dim: C (d_model of both blocks).
        num_heads: ignored for ``block="mamba1"``; for ``"mamba2"`` the number of SSD heads
            (headdim = expand * C / num_heads).
        dropout: dropout on the mixer output (training only).
        d_state, d_conv, expand: as mamba-ssm.
        block: "mamba1" (``Mamba``) or "mamba2" (``Mamba2``).
        backend: pin a scan backend for both blocks; None follows ``partx.config.mamba_backend()``.
        fused: when the backend resolves to ``chunked``, run both directions in one pass
            (``partx.nn.mamba.fused``; same result, faster on CPU); False: two block calls.
    """

    uses_bias = False
    needs_max_len = False  # a scan has no length limit
    #: Mamba keeps mamba-ssm's own initialisation (dt bias: inverse softplus of a log-uniform dt in
    #: [dt_min, dt_max]; S4D-real A; default Linear init) and no weaver depth rescaling: the ParT skeleton
    #: leaves every parameter of this mixer as its constructor set it.
    weaver_init = False
    #: none of weaver's attention options (qk-norm, output gates) has a meaning in a scan; the projection
    #: biases follow mamba-ssm (none), whatever the ParT block's ``use_bias``.
    attention_options = ()

    @strict_options
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        block: str = "mamba1",
        backend: str | None = None,
        fused: bool = True,
    ):
        super().__init__()
        self.fused = fused
        if block == "mamba1":
            make = lambda: MambaBlock(embed_dim, d_state=d_state, d_conv=d_conv, expand=expand, backend=backend)  # noqa: E731
        elif block == "mamba2":
            d_inner = expand * embed_dim
            assert d_inner % num_heads == 0, f"expand * embed_dim = {d_inner} not divisible by num_heads {num_heads}"
            make = lambda: Mamba2Block(  # noqa: E731
                embed_dim, d_state=d_state, d_conv=d_conv, expand=expand, headdim=d_inner // num_heads, backend=backend
            )
        else:
            raise ValueError(f"unknown mamba block {block!r}; choose 'mamba1' or 'mamba2'")
        self.block_type = block
        self.forward_block = make()
        self.backward_block = make()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, C), mask (B, N) True = real, bias ignored -> (B, N, C)."""
        keep = mask[..., None].to(x.dtype)
        x = x * keep  # padding carries nothing (and no NaN/inf garbage) into the scans
        rev = reverse_within_length(mask)
        if self.fused and resolve(self.forward_block.backend, self.block_type, x.device) == "chunked":
            return self.dropout(fused_path.bidirectional(self.forward_block, self.backward_block, x, mask, rev)) * keep
        y = self.forward_block(x) + gather_tokens(self.backward_block(gather_tokens(x, rev)), rev)
        return self.dropout(y) * keep
