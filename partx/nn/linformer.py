"""Linformer particle mixer: keys, values and the pairwise bias U projected to ``k`` slots along the particle axis.

Linformer (Wang et al. 2020) replaces the N x N logits by N x k ones: keys and values are mixed along the
sequence axis by learned projections ``E`` (for K) and ``F`` (for V) of shape (max_len, k), so that

    out = softmax(Q (E^T K)^T / sqrt(d) + U E + slot_mask) (F^T V)                    (per head)

with ``E^T K`` the (k, d) projected keys. Cost O(N k d) instead of O(N^2 d).

Why the ``linformer`` package (lucidrains, 0.2.3) is wrapped rather than used as is:
  * its ``LinformerSelfAttention.forward`` takes no mask and no additive bias: padded particles would be
    mixed into every projected key/value, and ParT's U has nowhere to go;
  * it needs a fixed maximum length (it slices its (seq_len, k) projections for shorter inputs).
We keep its parameterisation (``proj_k``/``proj_v`` of shape (max_len, k), one shared by all heads,
initialised with its ``init_``, optional ``share_kv``; the same contraction ``einsum('bnd,nk->bkd')``) and
its length handling (inputs of length N <= max_len use the first N rows, which is exactly padding to max_len
with zero rows), and add what ParT needs:

  * **padding**: padded rows of K and V are zeroed *before* the projection, so padded particles contribute
    nothing to any projected slot; together with the fixed projection rows per position (row n always
    belongs to particle n) the outputs of real particles do not depend on how much padding follows;
  * **U policy**: U is projected along its key axis with the same projection as K, ``U' = U E``
    ((B, H, N, N) @ (N, k) -> (B, H, N, k), padded key columns zeroed first) and added to the logits.
    Because the logits are linear in the key axis, ``Q (E^T K)^T + U E = (Q K^T + U) E``: the projected
    bias is exactly the projection of the full-attention logits ParT would compute;
  * **empty slots**: a slot whose projection column is zero on every real particle carries K = V = U' = 0
    and would still receive weight exp(0); such slots are masked. With learned (dense) projections no slot
    is ever empty; with ``k = max_len`` and ``E = F = I`` the empty slots are exactly the padded particles,
    so the mixer then reduces *exactly* to full attention with U and padding (tested against
    ``AttentionMixer``). The slot mask depends only on the projection rows of real particles, so it keeps
    the padding invariance.

Inputs longer than ``max_len`` raise a ``ValueError`` (the projection has no rows for them).
Parameter names ``in_proj``/``out_proj`` are those of ``AttentionMixer`` (weaver's), so a ParT checkpoint
initialises everything but the projections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from linformer.linformer import init_ as linformer_init_
from torch import nn

from partx import config
from partx.nn.attention import AttentionMixer, attention_math
from partx.nn.options import strict_options


class LinformerMixer(AttentionMixer):
    """Linformer attention behind the batch-first mixer interface.

    Args:
        embed_dim, num_heads, dropout, backend and the weaver attention options: as ``AttentionMixer``
            (backend runs the attention over the k projected slots: "sdpa" or "math").
        max_len: fixed maximum number of particles N (rows of the projections).
        k: number of projected key/value slots, 1 <= k <= max_len.
        share_kv: use one projection for keys and values (``E = F``), as the package's ``share_kv``.
    """

    needs_max_len = True

    @strict_options(forwarded=AttentionMixer.attention_options)
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        max_len: int = 128,
        k: int = 32,
        share_kv: bool = False,
        backend: str | None = None,
        **attention_options: object,
    ):
        if not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"Linformer: max_len must be a positive int, got {max_len!r}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= max_len:
            raise ValueError(f"Linformer: k (projection length) must be an int in [1, max_len={max_len}], got {k!r}")
        super().__init__(embed_dim, num_heads, dropout=dropout, backend=backend, **attention_options)
        self.max_len, self.k, self.share_kv = max_len, k, share_kv
        self.proj_k = nn.Parameter(linformer_init_(torch.zeros(max_len, k)))
        self.proj_v = None if share_kv else nn.Parameter(linformer_init_(torch.zeros(max_len, k)))

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, k={self.k}, share_kv={self.share_kv}"

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        N = x.size(1)
        if N > self.max_len:
            raise ValueError(f"Linformer: input has {N} particles but max_len={self.max_len}; build the mixer with a larger max_len")
        q, k, v = self.split_heads(x)  # (B, H, N, D)
        real = mask[:, None, :, None]  # (B, 1, N, 1)
        k = torch.where(real, k, 0.0)
        v = torch.where(real, v, 0.0)
        e = self.proj_k[:N]  # (N, k): the first N rows == padding to max_len with zero K/V rows
        f = e if self.proj_v is None else self.proj_v[:N]
        k = torch.einsum("bhnd,nk->bhkd", k, e)  # (B, H, k, D)
        v = torch.einsum("bhnd,nk->bhkd", v, f)

        # slots with no support on real particles (only with sparse, e.g. identity, projections) are masked
        support = mask.to(e.dtype) @ (e != 0).to(e.dtype)  # (B, k)
        attn_mask = torch.zeros(support.shape, dtype=q.dtype, device=q.device)
        attn_mask = attn_mask.masked_fill(support == 0, torch.finfo(q.dtype).min)[:, None, None, :]  # (B, 1, 1, k)
        if bias is not None:
            u = torch.where(mask[:, None, None, :], bias.to(q.dtype), 0.0)  # padded key columns of U -> 0
            attn_mask = attn_mask + u @ e.to(q.dtype)  # U' = U E: (B, H, N, k)

        dropout_p = self.dropout if self.training else 0.0
        backend = self.backend or ("sdpa" if config.use_fused_attn() else "math")
        if self.record_weights or backend == "math":
            out, weights = attention_math(q, k, v, attn_mask, dropout_p)
            self.last_weights = weights.detach() if self.record_weights else None  # (B, H, N, k): over slots
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        return self.merge_heads(out, x)
