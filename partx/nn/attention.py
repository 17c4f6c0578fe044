"""Full multi-head self-attention over particles, with ParT's pairwise bias U added to the logits.

Two implementations of the same function live side by side:
  * ``math``: explicit ``softmax(QK^T/sqrt(d) + U + pad) V``; the reference, and the only path that
    can return attention weights (``record_weights``; the attention-map tools will read them);
  * ``sdpa``: ``F.scaled_dot_product_attention`` with U and padding folded into one float mask, as
    weaver-core's ParT does. On CUDA this dispatches to the memory-efficient kernel (the flash kernel
    takes no float mask; see ``partx.nn.flex_attention`` for a fused kernel that keeps U).

Parameter names (``in_proj``, ``out_proj``, and with weaver's ParT version >= 3.5 options ``q_norm``,
``k_norm``, ``gate_proj``) match weaver-core's ``Attention`` so a weaver ParT state_dict loads unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from weaver.nn.model.ParticleTransformer import init_weights_vit_moco, named_apply

from partx import config
from partx.nn.options import strict_options


def additive_mask(mask: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """Fold key padding and the pairwise bias into one additive float mask.

    Padded keys get the most negative finite value rather than -inf, so a jet with no real particle
    yields finite (if meaningless) outputs instead of NaN; exp() of it is exactly 0 in fp32.

    Args:
        mask: (B, N) bool, True for real particles.
        bias: (B, H, N, N) float or None.
    Returns:
        (B, H or 1, 1 or N, N) float mask to add to the logits.
    """
    pad = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    pad = pad.masked_fill(~mask, torch.finfo(dtype).min)[:, None, None, :]  # (B, 1, 1, N)
    if bias is None:
        return pad
    return bias.to(dtype) + pad


def attention_math(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor, dropout_p: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference attention. q, k, v: (B, H, N, D); attn_mask additive. Returns (out, weights (B, H, N, N))."""
    logits = (q * (1.0 / math.sqrt(q.size(-1)))) @ k.transpose(-2, -1) + attn_mask
    weights = logits.softmax(dim=-1)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights


class AttentionMixer(nn.Module):
    """Batch-first particle mixer: ``(x (B, N, C), mask (B, N), bias (B, H, N, N) | None) -> (B, N, C)``.

    Args:
        embed_dim: channel width C.
        num_heads: H; C must be divisible by H.
        dropout: attention-weight dropout (training only).
        backend: "sdpa" or "math"; None follows ``partx.config.use_fused_attn()``.
        bias, use_qk_norm, norm_layer, headwise_attn_output_gate, elementwise_attn_output_gate: as
            weaver-core's ``Attention`` (ParT block options; qk-norm and the elementwise gate are the
            defaults of weaver's version 3.5): projection biases (off in version 3); a per-head
            ``norm_layer`` on q and k; a sigmoid gate ``gate_proj(x)`` on the attention output per head or
            per channel, before ``out_proj``.

    Initialisation: weaver's ParT "moco" scheme (``init_weights_vit_moco``: q, k, v blocks of ``in_proj``
    and every other Linear Xavier-uniform, biases zero), so a mixer built alone is initialised as weaver's
    ParT initialises its attention.
    """

    uses_bias = True
    needs_max_len = False
    #: The ParT skeleton re-initialises this mixer with weaver's ``weight_init`` and rescales ``out_proj``
    #: by depth (``fix_init``), exactly as weaver's ParT treats its own ``Attention``.
    weaver_init = True
    #: weaver ``Attention`` keywords this mixer implements (the skeleton passes the block's values).
    attention_options = ("bias", "use_qk_norm", "norm_layer", "headwise_attn_output_gate", "elementwise_attn_output_gate")
    #: rows of ``in_proj`` in units of C: q, k, v.
    num_in_proj = 3

    @strict_options
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        backend: str | None = None,
        bias: bool = True,
        use_qk_norm: bool = False,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        headwise_attn_output_gate: bool = False,
        elementwise_attn_output_gate: bool = False,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        if backend not in (None, "sdpa", "math"):
            raise ValueError(f"unknown attention backend {backend!r}; choose 'sdpa', 'math' or None")
        if headwise_attn_output_gate and elementwise_attn_output_gate:
            raise ValueError("headwise_attn_output_gate and elementwise_attn_output_gate exclude each other")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout = dropout
        self.backend = backend
        self.in_proj = nn.Linear(embed_dim, self.num_in_proj * embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        if use_qk_norm:
            self.q_norm, self.k_norm = norm_layer(self.head_dim), norm_layer(self.head_dim)
        else:
            self.q_norm = self.k_norm = None
        gate_width = num_heads if headwise_attn_output_gate else embed_dim if elementwise_attn_output_gate else 0
        self.gate_proj = nn.Linear(embed_dim, gate_width, bias=bias) if gate_width else None
        #: Set True to keep the last forward's attention weights in ``last_weights`` (forces the math path).
        self.record_weights = False
        self.last_weights: torch.Tensor | None = None
        named_apply(init_weights_vit_moco, self)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, N, C) -> q, k, v each (B, H, N, D), q and k normalised per head if ``use_qk_norm``."""
        B, N, _ = x.shape
        qkv = self.in_proj(x).view(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return self.norm_qk(q, k) + (v,)

    def norm_qk(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """weaver's q_norm / k_norm over the head dimension (identity without ``use_qk_norm``)."""
        if self.q_norm is None:
            return q, k
        return self.q_norm(q), self.k_norm(k)

    def merge_heads(self, out: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """out (B, H, N, D) -> gated and projected (B, N, C); the output gate reads the mixer input x (B, N, C)."""
        B, _, N, _ = out.shape
        out = out.transpose(1, 2)  # (B, N, H, D)
        if self.gate_proj is not None:
            if x is None:
                raise ValueError("merge_heads: the attention output gate needs the mixer input x")
            # per head (B, N, H, 1) or per channel (B, N, H, D), as weaver's Attention
            out = out * torch.sigmoid(self.gate_proj(x)).view(B, N, self.num_heads, -1)
        return self.out_proj(out.reshape(B, N, self.embed_dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.split_heads(x)
        attn_mask = additive_mask(mask, bias, q.dtype)
        dropout_p = self.dropout if self.training else 0.0
        backend = self.backend or ("sdpa" if config.use_fused_attn() else "math")
        if self.record_weights or backend == "math":
            out, weights = attention_math(q, k, v, attn_mask, dropout_p)
            self.last_weights = weights.detach() if self.record_weights else None
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        return self.merge_heads(out, x)
