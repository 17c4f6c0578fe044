"""Reformer particle mixer: shared-QK LSH attention (Kitaev et al. 2020) with ParT's U gathered per chunk.

The algorithm is reformer-pytorch's ``LSHAttention`` (1.4.4, its defaults): angular LSH by random rotations
(``argmax([xR, -xR])``, one rotation per hashing round), sort by (round, bucket, position), split the sorted
sequence into chunks of ``bucket_size``, attend within the chunk and one chunk back, with shared Q/K (keys
L2-normalised, a token attends to itself only at the fixed logit -5e4), and combine the rounds weighted by
their log-sum-exp. ``lsh_attention`` below reproduces the package's forward exactly when nothing is padded and
no bias is given (tested: same rotations -> same buckets and outputs).

Why not call ``reformer_pytorch.LSHAttention`` itself: four things ParT needs cannot be passed through it.
  (a) **fixed length**: the package derives the number of buckets and chunks from the (padded) input length,
      so more padding changes every real token's hash and chunk. Here the sequence is always padded to the
      fixed length ``L = max_len`` rounded up to a multiple of ``2 * bucket_size`` (the package's divisibility
      rule) and ``n_buckets = L / bucket_size``; inputs longer than ``max_len`` raise a ValueError.
  (b) **padding sorts last**: the package hashes padded tokens like real ones, so garbage in padded slots
      moves real tokens' chunk boundaries. Here padded tokens get an extra bucket ``n_buckets`` after all
      real buckets of their round, so within every round the real tokens occupy the same sorted positions
      whatever the padding; padded keys are then masked like the package's ``input_mask``.
      With (a) and (b) real outputs do not depend on the amount or content of padding.
  (c) **determinism in eval**: the package draws new rotations with ``torch.randn`` on every call. Here the
      rotations of eval mode are a persistent buffer (drawn at construction from the global RNG, saved in the
      state_dict, exported as a constant to ONNX); in training fresh rotations are drawn per forward, as in
      the package.
  (d) **U policy**: the package takes only boolean masks. A dense (B, H, N, N) U cannot steer the buckets
      (hashing sees only the shared Q/K), but it can be *gathered* for exactly the (query, key) pairs each
      chunk computes and added to those logits; this is exact for every pair the LSH attention evaluates
      (pairs it does not evaluate get no weight, with or without U). U's diagonal is unused: shared-QK
      attention replaces the self logit by -5e4 (a token attends to itself only when nothing else is there).
From the package we import its self-attention logit ``TOKEN_SELF_ATTN_VALUE``; its hashing and chunking
are re-expressed here (a few tensor ops each) with the changes above, and tests/test_reformer.py checks
them against ``LSHAttention.hash_vectors`` and ``LSHAttention.forward``.

Parameters: ``in_proj`` maps C -> 2C (shared QK, then V) and ``out_proj`` C -> C, so a ParT checkpoint's
attention can seed it (rows [Q; V] of its in_proj). Q and K are tied: that is the Reformer, not a bug.
Cost per round O(N * 2 * bucket_size * d) plus an O(N log N) sort.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from reformer_pytorch.reformer_pytorch import TOKEN_SELF_ATTN_VALUE
from torch import nn

from partx.nn.attention import AttentionMixer
from partx.nn.lsh import inverse_permutation
from partx.nn.options import strict_options


def lsh_buckets(qk: torch.Tensor, rotations: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Angular LSH bucket of every vector in every round.

    Args:
        qk: (BH, L, D) shared query/key vectors.
        rotations: (1 or BH, D, n_hashes, n_buckets // 2).
        key_mask: (BH, L) bool, True = real; padded tokens get the extra bucket ``n_buckets`` (sorted last).
    Returns:
        (BH, n_hashes, L) int64 buckets in [0, n_buckets] (no per-round offsets).
    """
    rotated = torch.einsum("btf,bfhi->bhti", qk, rotations.to(qk.dtype).expand(qk.size(0), -1, -1, -1))
    buckets = torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)
    if key_mask is not None:
        buckets = buckets.masked_fill(~key_mask[:, None, :], 2 * rotations.size(-1))
    return buckets


def _look_one_back(t: torch.Tensor) -> torch.Tensor:
    """Append each chunk's predecessor (cyclically, as the package does): (BH, C, s, ...) -> (BH, C, 2s, ...)."""
    return torch.cat([t, torch.roll(t, shifts=1, dims=1)], dim=2)


def lsh_attention(
    qk: torch.Tensor,
    v: torch.Tensor,
    rotations: torch.Tensor,
    bucket_size: int,
    key_mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Shared-QK LSH attention over a fixed-length sequence.

    Args:
        qk, v: (BH, L, D); L a multiple of ``2 * bucket_size``.
        rotations: (1 or BH, D, n_hashes, n_buckets // 2) with ``n_buckets = L // bucket_size``.
        key_mask: (BH, L) bool, True = real token, or None (all real).
        bias: (BH, L, L) additive logits for (query, key) pairs, or None.
    Returns:
        (BH, L, D).
    """
    BH, L, D = qk.shape
    n_hashes, n_buckets = rotations.size(2), 2 * rotations.size(3)
    if L % (2 * bucket_size) or L // bucket_size != n_buckets:
        raise ValueError(f"LSH attention: length {L} must equal n_buckets ({n_buckets}) x bucket_size ({bucket_size})")
    buckets = lsh_buckets(qk, rotations, key_mask)  # (BH, R, L) in [0, n_buckets]
    # sort by (round, bucket, position); padded tokens (bucket n_buckets) end every round
    rounds = torch.arange(n_hashes, device=qk.device)[None, :, None]
    ticker = torch.arange(L, device=qk.device)
    sort_key = ((rounds * (n_buckets + 1) + buckets) * L + ticker).flatten(1)  # (BH, R*L), all distinct
    order = sort_key.argsort(dim=-1)
    undo = inverse_permutation(order)  # partx.nn.lsh: O(n) scatter, same result as argsort
    st = order % L  # token index at each sorted position

    n_chunks = n_hashes * L // bucket_size
    bq_t = st.view(BH, n_chunks, bucket_size)
    bkv_t = _look_one_back(bq_t)  # (BH, C, 2s)
    sqk = qk.gather(1, st[..., None].expand(-1, -1, D)).view(BH, n_chunks, bucket_size, D)
    sv = v.gather(1, st[..., None].expand(-1, -1, D)).view(BH, n_chunks, bucket_size, D)
    bk = _look_one_back(F.normalize(sqk, p=2, dim=-1))
    bv = _look_one_back(sv)

    dots = (sqk @ bk.transpose(-2, -1)) * (D**-0.5)  # (BH, C, s, 2s)
    if bias is not None:  # U gathered for exactly the pairs this chunk computes
        pair = bq_t[..., :, None] * L + bkv_t[..., None, :]
        dots = dots + bias.reshape(BH, L * L).gather(1, pair.flatten(1)).view_as(dots).to(dots.dtype)
    if key_mask is not None:
        kmask = _look_one_back(key_mask.gather(1, st).view(BH, n_chunks, bucket_size))
        dots = dots.masked_fill(~kmask[..., None, :], torch.finfo(dots.dtype).min)
    dots = dots.masked_fill(bq_t[..., :, None] == bkv_t[..., None, :], TOKEN_SELF_ATTN_VALUE)

    lse = dots.logsumexp(dim=-1, keepdim=True)
    probs = (dots - lse).exp()
    if dropout_p > 0:
        probs = F.dropout(probs, p=dropout_p)
    so = (probs @ bv).view(BH, n_hashes * L, D)
    o = so.gather(1, undo[..., None].expand(-1, -1, D)).view(BH, n_hashes, L, D)
    round_logits = lse.view(BH, n_hashes * L).gather(1, undo).view(BH, n_hashes, L, 1)
    return (o * round_logits.softmax(dim=1)).sum(dim=1)


class ReformerMixer(AttentionMixer):
    """Reformer (shared-QK LSH) attention behind the batch-first mixer interface.

    Args:
        embed_dim, num_heads, dropout, bias and the attention output gates: as ``AttentionMixer``.
        max_len: maximum number of particles; the sequence is padded to ``max_len`` rounded up to a multiple
            of ``2 * bucket_size``.
        bucket_size: chunk length (each query sees 2 * bucket_size keys per round).
        n_hashes: hashing rounds.
    """

    needs_max_len = True
    #: shared QK has one query/key vector per head, so weaver's separate q_norm / k_norm do not apply
    attention_options = tuple(o for o in AttentionMixer.attention_options if o not in ("use_qk_norm", "norm_layer"))
    num_in_proj = 2  # shared QK, V

    @strict_options(forwarded=attention_options)
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        max_len: int = 128,
        bucket_size: int = 16,
        n_hashes: int = 2,
        **attention_options: object,
    ):
        if not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"Reformer: max_len must be a positive int, got {max_len!r}")
        if not isinstance(bucket_size, int) or isinstance(bucket_size, bool) or bucket_size < 1:
            raise ValueError(f"Reformer: bucket_size must be a positive int, got {bucket_size!r}")
        if not isinstance(n_hashes, int) or isinstance(n_hashes, bool) or n_hashes < 1:
            raise ValueError(f"Reformer: n_hashes must be a positive int, got {n_hashes!r}")
        super().__init__(embed_dim, num_heads, dropout=dropout, backend="math", **attention_options)
        self.max_len, self.bucket_size, self.n_hashes = max_len, bucket_size, n_hashes
        self.seq_len = -(-max_len // (2 * bucket_size)) * (2 * bucket_size)
        n_buckets = self.seq_len // bucket_size
        # rotations used in eval (fixed, saved); training draws fresh ones each forward
        self.register_buffer("rotations", torch.randn(1, self.head_dim, n_hashes, n_buckets // 2))

    def extra_repr(self) -> str:
        return f"max_len={self.max_len} (padded to {self.seq_len}), bucket_size={self.bucket_size}, n_hashes={self.n_hashes}"

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, N, C) -> q, k, v each (B, H, N, D) with q is k (shared QK)."""
        B, N, _ = x.shape
        qk, v = self.in_proj(x).view(B, N, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return qk, qk, v

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        B, N, _ = x.shape
        if N > self.max_len:
            raise ValueError(f"Reformer: input has {N} particles but max_len={self.max_len}; build the mixer with a larger max_len")
        if self.record_weights:
            raise NotImplementedError("Reformer: attention weights are not recorded (LSH computes a sparse subset of pairs)")
        qk, _, v = self.split_heads(x)
        H, D, L, pad = self.num_heads, self.head_dim, self.seq_len, self.seq_len - N
        qk = F.pad(qk, (0, 0, 0, pad)).reshape(B * H, L, D)
        v = F.pad(v, (0, 0, 0, pad)).reshape(B * H, L, D)
        key_mask = F.pad(mask, (0, pad), value=False)[:, None, :].expand(B, H, L).reshape(B * H, L)
        if bias is not None:
            bias = F.pad(bias, (0, pad, 0, pad)).reshape(B * H, L, L)  # pad even when 0: traced graphs stay generic
        rotations = torch.randn_like(self.rotations) if self.training else self.rotations
        dropout_p = self.dropout if self.training else 0.0
        out = lsh_attention(qk, v, rotations, self.bucket_size, key_mask=key_mask, bias=bias, dropout_p=dropout_p)
        return self.merge_heads(out.view(B, H, L, D)[:, :, :N], x)
