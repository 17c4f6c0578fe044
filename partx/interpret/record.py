"""Opt-in recording of ParT attention weights: ``with record_attention(model) as rec: model(...)``.

Fused kernels (SDPA, FlexAttention) never materialise the attention matrix, and weaver-core's ParT
returns ``(out, None)``. Inside the context manager every attention module of the model runs its explicit
reference path and appends one ``AttentionRecord`` per call to ``rec.records``:

  * particle blocks with full attention (partx ``AttentionMixer`` and its fused twin ``FlexAttentionMixer``;
    weaver's own ``Attention`` in a weaver ``ParticleTransformer``): the weights
    ``softmax(QK^T/sqrt(d) + U + pad)`` and, separately, the two parts of the logits (``qk`` and ``u``);
  * class-attention blocks (weaver's ``Attention`` called with the class token as the only query): the
    class token's weights over [class token, particles];
  * Linformer: the weights over the k projected slots, and the *effective mixing matrix* over particles
    ``W F^T`` (out = (W F^T) V exactly; not a probability: rows need not sum to 1, entries may be negative);
  * Reformer: the *effective LSH attention* over particles (each query's weights summed over hashing rounds,
    weighted as the rounds are combined; rows sum to 1; pairs LSH never computed get exactly 0), obtained by
    running the same LSH attention on one-hot values;
  * Mamba and other mixers without attention: ``AttentionNotApplicable`` (one line, a user error).

When the context is left, every module is restored: the recorder installs per-instance ``forward``
overrides and hooks only inside the ``with`` block, so a model outside it runs exactly as before (no cost).

Conventions of a record: padded query rows are zeroed (they never reach a real particle's output), padded
key columns are exactly 0; ``qk`` and ``u`` keep their raw values on padding (use the masks).
Particles are in the model's input order (pT-ordered for JetClass), also when the model re-orders them
(``ordering``: the permutation is undone).
"""

from __future__ import annotations

import contextlib
import math
import types
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from partx.cli import UserError


class AttentionNotApplicable(UserError):
    """The model (or one of its mixers) has no attention weights to record: one line, exit 2 in the CLIs."""


@dataclass
class AttentionRecord:
    """One attention call.

    Args:
        name: module path of the block ("blocks.3", "cls_blocks.0").
        kind: "particle" or "class".
        layer: index within its kind.
        weights: (B, H, Nq, Nk) attention weights (class blocks: Nq = 1, keys = [class token, particles]).
        query_mask, key_mask: (B, Nq), (B, Nk) bool, True = real.
        qk: (B, H, Nq, Nk) the QK^T/sqrt(d) part of the logits, or None.
        u: (B, H, Nq, Nk) the pairwise-bias part U of the logits (as added, after ``scale_attn_mask``), or None.
        values: (B, H, Nk, D) the values the weights multiply (only with ``keep_values``), or None.
        label: what ``weights`` is, for plots.
        is_distribution: rows are probability distributions over real keys.
        slot_weights: Linformer only: (B, H, N, k) weights over projected slots.
    """

    name: str
    kind: str
    layer: int
    weights: torch.Tensor
    query_mask: torch.Tensor
    key_mask: torch.Tensor
    qk: torch.Tensor | None = None
    u: torch.Tensor | None = None
    values: torch.Tensor | None = None
    label: str = "softmax(QK^T/sqrt(d) + U)"
    is_distribution: bool = True
    slot_weights: torch.Tensor | None = None


class AttentionRecorder:
    """What ``record_attention`` yields: ``records`` in call order; ``clear()`` between batches."""

    def __init__(self, keep_values: bool = False):
        self.keep_values = keep_values
        self.records: list[AttentionRecord] = []
        self._perm: torch.Tensor | None = None
        self._done = 0  # records already put back in input order

    def clear(self) -> None:
        self.records.clear()
        self._perm = None
        self._done = 0

    def particle(self) -> list[AttentionRecord]:
        return [r for r in self.records if r.kind == "particle"]

    def cls(self) -> list[AttentionRecord]:
        return [r for r in self.records if r.kind == "class"]

    def add(self, rec: AttentionRecord) -> None:
        rec.weights = rec.weights * rec.query_mask[:, None, :, None]  # padded query rows -> 0
        self.records.append(rec)


def find_part(model: nn.Module) -> nn.Module:
    """The ParT inside ``model`` (partx's or weaver's: the module with ``blocks`` and ``cls_blocks``)."""
    for module in model.modules():
        if hasattr(module, "blocks") and hasattr(module, "cls_blocks") and isinstance(module.blocks, nn.ModuleList):
            return module
    raise AttentionNotApplicable(f"{type(model).__name__} contains no Particle Transformer (no particle / class-attention "
                                 "blocks): attention maps are not applicable")


def _is_weaver_attention(module: nn.Module) -> bool:
    return type(module).__name__ == "Attention" and type(module).__module__.startswith("weaver.")


def _label(kind: str, with_u: bool) -> str:
    logits = "QK^T/sqrt(d) + U" if with_u else "QK^T/sqrt(d)"
    return f"softmax({logits})" + (" of the class token" if kind == "class" else "")


def _weaver_attention_forward(recorder: AttentionRecorder, name: str, kind: str, layer: int):
    """A replacement for weaver-core 0.5.3 ``Attention.forward`` (weaver/nn/model/ParticleTransformer.py) that
    takes its explicit (non-SDPA) path and records; same arguments, same ``(out, None)`` return."""
    from weaver.nn.model.ParticleTransformer import _canonical_mask

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None):
        bsz, tgt_len, _ = query.shape
        src_len = key.size(1)
        real_keys = (~key_padding_mask.bool()) if key_padding_mask is not None else query.new_ones(bsz, src_len, dtype=torch.bool)
        pad = _canonical_mask(key_padding_mask, "key_padding_mask", None, "", query.dtype)
        u = _canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        q, k, v = F._in_projection_packed(query, key, value, self.in_proj.weight, self.in_proj.bias)
        q = self.q_norm(q.view(bsz, tgt_len, self.num_heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(k.view(bsz, src_len, self.num_heads, self.head_dim)).transpose(1, 2)
        v = v.view(bsz, src_len, self.num_heads, self.head_dim).transpose(1, 2)
        qk = (q * math.sqrt(1.0 / float(self.head_dim))) @ k.transpose(-2, -1)  # (B, H, Nq, Nk)
        logits = qk
        if u is not None:
            logits = logits + u
        if pad is not None:
            logits = logits + pad.view(bsz, 1, 1, src_len)
        weights = logits.softmax(dim=-1)
        dropout_p = self.dropout if self.training else 0.0
        out = (F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights) @ v
        out = out.transpose(1, 2).contiguous()
        if self.headwise_attn_output_gate:
            out = out * torch.sigmoid(self.gate_proj(query)).reshape(bsz, tgt_len, self.num_heads, 1)
        elif self.elementwise_attn_output_gate:
            out = out * torch.sigmoid(self.gate_proj(query)).reshape(bsz, tgt_len, self.num_heads, self.head_dim)
        out = self.out_proj(out.reshape(bsz, tgt_len, self.embed_dim))
        # class attention: the query is the class token, a real key (the first); self-attention: queries = keys
        query_mask = real_keys[:, :1] if kind == "class" else real_keys
        recorder.add(AttentionRecord(
            name, kind, layer, weights.detach(), query_mask, real_keys, qk.detach(),
            u.detach() if u is not None else None, v.detach() if recorder.keep_values else None,
            label=_label(kind, u is not None)))
        return out, None

    return forward


def _mixer_forward(recorder: AttentionRecorder, name: str, layer: int):
    """``AttentionMixer.forward`` on its reference path (``partx.nn.attention.attention_math``), recording."""
    from partx.nn.attention import additive_mask, attention_math

    def forward(self, x, mask, bias=None):
        q, k, v = self.split_heads(x)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = attention_math(q, k, v, additive_mask(mask, bias, q.dtype), dropout_p)
        qk = (q * (1.0 / math.sqrt(q.size(-1)))) @ k.transpose(-2, -1)  # the same product attention_math forms
        recorder.add(AttentionRecord(
            name, "particle", layer, weights.detach(), mask, mask, qk.detach(),
            bias.detach() if bias is not None else None, v.detach() if recorder.keep_values else None,
            label=_label("particle", bias is not None)))
        return self.merge_heads(out, x)

    return forward


def _linformer_hook(recorder: AttentionRecorder, name: str, layer: int):
    """Forward hook of a Linformer mixer run with ``record_weights``: slot weights and the effective W F^T."""

    def hook(module, args, output):
        x, mask = args[0], args[1]
        w = module.last_weights  # (B, H, N, k)
        N = x.size(1)
        f = module.proj_k[:N] if module.proj_v is None else module.proj_v[:N]  # (N, k)
        eff = (w @ f.detach().T.to(w.dtype)) * mask[:, None, None, :]  # padded V rows are zeroed: columns 0
        recorder.add(AttentionRecord(
            name, "particle", layer, eff, mask, mask, label="Linformer effective mixing W F^T (not a probability)",
            is_distribution=False, slot_weights=w))

    return hook


def _reformer_hook(recorder: AttentionRecorder, name: str, layer: int):
    """Forward hook of a Reformer mixer: its LSH attention re-run on one-hot values gives the effective weights."""
    from partx.nn.reformer import lsh_attention

    def hook(module, args, output):
        x, mask = args[0], args[1]
        bias = args[2] if len(args) > 2 else None
        B, N, _ = x.shape
        with torch.no_grad():
            qk, _, _ = module.split_heads(x)
            H, D, L = module.num_heads, module.head_dim, module.seq_len
            qk = F.pad(qk, (0, 0, 0, L - N)).reshape(B * H, L, D)
            key_mask = F.pad(mask, (0, L - N), value=False)[:, None, :].expand(B, H, L).reshape(B * H, L)
            if bias is not None:
                bias = F.pad(bias, (0, L - N, 0, L - N)).reshape(B * H, L, L)
            eye = torch.eye(L, dtype=qk.dtype, device=qk.device)
            cols = []
            for start in range(0, L, D):  # lsh_attention wants values of the head width D
                onehot = F.pad(eye[:, start:start + D], (0, max(0, start + D - L)))
                cols.append(lsh_attention(qk, onehot.expand(B * H, L, D), module.rotations, module.bucket_size,
                                          key_mask=key_mask, bias=bias)[..., : min(D, L - start)])
            eff = torch.cat(cols, dim=-1).view(B, H, L, L)[:, :, :N, :N]
        recorder.add(AttentionRecord(name, "particle", layer, eff, mask, mask,
                                     label="Reformer effective LSH attention (summed over hash rounds)"))

    return hook


def _unpermute(record: AttentionRecord, perm: torch.Tensor) -> None:
    """A record of a model that re-ordered particles by ``perm`` (B, N) back to the input order (class records:
    the particle key columns after the class token)."""
    from partx.nn.ordering import inverse_permutation

    inv = inverse_permutation(perm)  # position of input particle i in the model's order
    if record.kind == "class":
        inv = torch.cat([torch.zeros_like(inv[:, :1]), inv + 1], dim=1)  # the class token stays first

    def take(t: torch.Tensor | None, dim: int) -> torch.Tensor | None:
        if t is None:
            return None
        shape = [1] * t.dim()
        shape[0], shape[dim] = inv.size(0), inv.size(1)
        return t.gather(dim, inv.view(shape).expand(*[t.size(i) if i != dim else inv.size(1) for i in range(t.dim())]))

    for attr in ("weights", "qk", "u"):
        t = getattr(record, attr)
        if record.kind == "particle":
            t = take(take(t, 2), 3)
        else:
            t = take(t, 3)
        setattr(record, attr, t)
    record.key_mask = take(record.key_mask, 1)
    if record.kind == "particle":
        record.query_mask = take(record.query_mask, 1)


@contextlib.contextmanager
def record_attention(model: nn.Module, keep_values: bool = False) -> Iterator[AttentionRecorder]:
    """Record every attention call of the ParT inside ``model`` while the context is open.

    Args:
        model: a partx or weaver-core ParticleTransformer, or any module containing one (weaver wrapper).
        keep_values: also keep the values V of each call in ``AttentionRecord.values`` (for checks).
    Raises:
        AttentionNotApplicable: no ParT inside, a mixer without attention (Mamba), or a global-token model.
    """
    part = find_part(model)
    if getattr(part, "include_global_token", False):
        raise AttentionNotApplicable("attention maps of global-token ParT models (include_global_token / version 3.6) "
                                     "are not supported: their class token is a particle-block token")
    from partx.nn.attention import AttentionMixer
    from partx.nn.flex_attention import FlexAttentionMixer
    from partx.nn.linformer import LinformerMixer
    from partx.nn.reformer import ReformerMixer

    recorder = AttentionRecorder(keep_values)
    undo: list = []
    plan = [("blocks", "particle", b) for b in part.blocks] + [("cls_blocks", "class", b) for b in (part.cls_blocks or [])]
    counters = {"particle": 0, "class": 0}
    try:
        for group, kind, block in plan:
            layer = counters[kind]
            counters[kind] += 1
            name = f"{group}.{layer}"
            attn = block.attn
            if _is_weaver_attention(attn):
                attn.forward = types.MethodType(_weaver_attention_forward(recorder, name, kind, layer), attn)
                undo.append(lambda a=attn: a.__dict__.pop("forward", None))
            elif isinstance(attn, LinformerMixer):
                before = attn.record_weights
                attn.record_weights = True
                handle = attn.register_forward_hook(_linformer_hook(recorder, name, layer))
                undo.append(lambda a=attn, h=handle, b=before: (h.remove(), setattr(a, "record_weights", b),
                                                                setattr(a, "last_weights", None)))
            elif isinstance(attn, ReformerMixer):
                handle = attn.register_forward_hook(_reformer_hook(recorder, name, layer))
                undo.append(handle.remove)
            elif type(attn) in (AttentionMixer, FlexAttentionMixer):
                attn.forward = types.MethodType(_mixer_forward(recorder, name, layer), attn)
                undo.append(lambda a=attn: a.__dict__.pop("forward", None))
            else:
                mixer = getattr(getattr(part, "config", None), "mixer", type(attn).__name__)
                raise AttentionNotApplicable(f"mixer {mixer!r} ({type(attn).__name__}) has no attention weights: "
                                             "attention maps are not applicable to this model")
        if getattr(getattr(part, "config", None), "ordering", "none") != "none":
            original = part.encode

            def encode(*args, **kwargs):
                tokens, real, perm = original(*args, **kwargs)
                recorder._perm = perm
                return tokens, real, perm

            part.encode = encode
            undo.append(lambda: part.__dict__.pop("encode", None))

            def unpermute_hook(module, args, output):
                for r in recorder.records[recorder._done:]:
                    if recorder._perm is not None:
                        _unpermute(r, recorder._perm)
                recorder._done = len(recorder.records)

            undo.append(part.register_forward_hook(unpermute_hook).remove)
        yield recorder
    finally:
        for fn in reversed(undo):
            fn()
