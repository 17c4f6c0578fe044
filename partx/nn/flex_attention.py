"""Full attention with U through PyTorch's FlexAttention (the ``ParTFlash`` mixer, registry name "flex").

Same function as ``AttentionMixer`` (``softmax(QK^T/sqrt(d) + U + pad) V``, same parameters, so a ParT
checkpoint loads unchanged), computed by ``torch.nn.attention.flex_attention.flex_attention`` with

  * ``score_mod``: ``score + U[b, h, q, kv]`` (U read inside the fused kernel, never folded into a mask);
  * ``block_mask``: a ``mask_mod`` ``mask[b, kv]`` on real keys (lets the kernel skip fully padded key blocks).

Which kernel runs is decided per call and recorded in ``last_kernel``:

  =====================  ======================================================================
  "math"                 ``partx.config.use_fused_attn()`` is off, or ``record_weights`` is set
  "flex"                 U given, and either CUDA (``torch.compile(flex_attention)``) or CPU with no
                         gradient needed (eager flex; torch 2.13 raises "FlexAttention does not
                         support backward on CPU" if q/k/v require grad -- checked here)
  "sdpa-<kernel>"        otherwise, and while exporting to ONNX (no FlexAttention op there):
                         ``F.scaled_dot_product_attention`` under ``sdpa_kernel`` with
                         [flash, efficient, math] allowed; with U (CPU training, or attention dropout
                         > 0, which FlexAttention does not implement) U + padding are folded into one
                         float mask as in ``AttentionMixer``; without U (ParT-plain) only the key
                         padding is passed. <kernel> is what the dispatcher picked:
                         "flash", "efficient", "cudnn" or "math".
  =====================  ======================================================================

Notes: on CUDA the flash kernel takes no mask, so padded ParT-plain batches run the efficient kernel; the
CPU "flash" kernel accepts masks. Eager flex on CPU materialises the full score matrix (a reference, not a
speed-up); ``compile=True`` compiles on CPU too (inductor CPU template; ~25 s per new shape here).
The dispatcher's pick is read with the private ``torch._fused_sdp_choice`` (label "sdpa" if absent).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from partx import config
from partx.nn.attention import AttentionMixer, additive_mask, attention_math
from partx.nn.options import strict_options

_SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
_SDPA_NAMES = {
    SDPBackend.FLASH_ATTENTION: "flash",
    SDPBackend.EFFICIENT_ATTENTION: "efficient",
    SDPBackend.CUDNN_ATTENTION: "cudnn",
    SDPBackend.MATH: "math",
}
_compiled_flex = None


def flex_kernel(compile: bool):
    """``flex_attention``, compiled once per process when asked (torch.compile caches per shape)."""
    global _compiled_flex
    from torch.nn.attention.flex_attention import flex_attention

    if not compile:
        return flex_attention
    if _compiled_flex is None:
        # default dynamic=None: after the first new length dynamo compiles a length-generic kernel, so ParT's
        # per-batch trimming does not exhaust the recompile limit (dynamic=False would compile per length)
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex


def flex_attention_with_bias(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    bias: torch.Tensor | None,
    compile: bool = False,
) -> torch.Tensor:
    """FlexAttention with ``score + bias[b, h, q, kv]`` and padded keys masked. q, k, v (B, H, N, D); mask (B, N)."""
    from torch.nn.attention.flex_attention import create_block_mask

    B, _, N, _ = q.shape

    def key_is_real(b, h, q_idx, kv_idx):
        return mask[b, kv_idx]

    block_mask = create_block_mask(key_is_real, B, None, N, N, device=q.device)
    score_mod = None
    if bias is not None:
        bias = bias.to(q.dtype)

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + bias[b, h, q_idx, kv_idx]

    if compile:
        return flex_kernel(True)(q, k, v, score_mod=score_mod, block_mask=block_mask)
    with warnings.catch_warnings():  # eager (unfused) flex is a deliberate choice here, see the module docstring
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_kernel(False)(q, k, v, score_mod=score_mod, block_mask=block_mask)


def sdpa_with_label(q, k, v, attn_mask, dropout_p: float) -> tuple[torch.Tensor, str]:
    """SDPA with flash / efficient / math allowed; returns (out, "sdpa-<kernel the dispatcher picked>")."""
    with sdpa_kernel(_SDPA_BACKENDS):
        label = "sdpa"
        choice = getattr(torch, "_fused_sdp_choice", None)
        if choice is not None:
            try:
                label = "sdpa-" + _SDPA_NAMES.get(SDPBackend(choice(q, k, v, attn_mask, dropout_p, False)), "other")
            except Exception:  # private API: never let the label break the forward
                label = "sdpa"
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p), label


def _exporting() -> bool:
    """ONNX has no FlexAttention op: export (TorchScript tracing or the ONNX exporter) takes the SDPA path."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


class FlexAttentionMixer(AttentionMixer):
    """``AttentionMixer`` computed by FlexAttention where it can run, SDPA otherwise (see module docstring).

    Args:
        embed_dim, num_heads, dropout, and the weaver attention options (``attention_options``): as
            ``AttentionMixer``.
        compile: compile ``flex_attention``; None = on CUDA only.
    """

    @strict_options(forwarded=AttentionMixer.attention_options)
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        compile: bool | None = None,
        **attention_options: object,
    ):
        if compile not in (None, True, False):
            raise ValueError(f"Flex: compile must be None, True or False, got {compile!r}")
        super().__init__(embed_dim, num_heads, dropout=dropout, **attention_options)
        self.compile = compile
        #: Which kernel the last forward ran: "flex", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn", "sdpa-math", "math".
        self.last_kernel: str | None = None

    def flex_usable(self, q: torch.Tensor, dropout_p: float) -> bool:
        if dropout_p > 0:  # FlexAttention has no attention-weight dropout
            return False
        if q.device.type == "cuda":
            return True
        return q.device.type == "cpu" and not (torch.is_grad_enabled() and q.requires_grad)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.split_heads(x)
        dropout_p = self.dropout if self.training else 0.0
        if self.record_weights or not config.use_fused_attn():
            out, weights = attention_math(q, k, v, additive_mask(mask, bias, q.dtype), dropout_p)
            self.last_weights = weights.detach() if self.record_weights else None
            self.last_kernel = "math"
        elif bias is not None and self.flex_usable(q, dropout_p) and not _exporting():
            compile = self.compile if self.compile is not None else q.device.type == "cuda"
            out = flex_attention_with_bias(q, k, v, mask, bias, compile=compile)
            self.last_kernel = "flex"
        else:
            out, self.last_kernel = sdpa_with_label(q, k, v, additive_mask(mask, bias, q.dtype), dropout_p)
        return self.merge_heads(out, x)
