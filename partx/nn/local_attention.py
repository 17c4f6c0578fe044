"""Local attention: each particle attends to its k nearest neighbours in (rapidity, phi), with U only there.

ParT's pairwise bias U costs O(N^2) per jet however cheap the mixer is (54-60 % of ParT's CPU time at
N = 128, docs/benchmarks.md). Here each particle attends only to its ``k`` nearest particles in
Delta R (weaver's ``delta_r2``: phi wrapped to [-pi, pi); the particle itself, at Delta R = 0, is one of
them), and U is evaluated only for those (B, N, k) pairs, in training as in inference, by weaver's own
``PairEmbed`` layers (``pair_embed_at``): the same PairEmbed parameters give the same U values as the dense
(B, H, N, N) U at those pairs.

Interface extension (partx/nn/mixers.py): a mixer with ``pair_mode = "local"`` gets, instead of a dense U,
a ``LocalPairs(index (B, N, k), bias (B, H, N, k) | None)``, built by the ParT skeleton from the mixer's
``neighbours(v, mask)`` and ``pair_embed_at``. Which pairs exist:
  * a real particle's neighbours are real particles only, nearest first;
  * a jet with n < k real particles: every real particle attends to all n (so with k >= N local attention
    *is* full attention with U); its k - n remaining slots point at padded positions and are masked (weight
    exactly 0, U 0);
  * padded particles' rows (never read by real particles) point at arbitrary positions.

Coordinates: rapidity and azimuth of the 4-vectors (weaver's ``to_ptrapphim``), the ones ParT's own pair
feature ln Delta computes, so ``k`` nearest in Delta R means smallest ln Delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from weaver.nn.model.ParticleTransformer import PairEmbed, delta_r2, to_ptrapphim

from partx.nn.attention import AttentionMixer
from partx.nn.options import strict_options


@dataclass(frozen=True)
class LocalPairs:
    """The sparse pair set a local mixer consumes.

    Args:
        index: (B, N, k) int64, the k neighbours of each particle (positions along N).
        bias: (B, H, N, k) U of those pairs (0 where the query or the key is padding), or None (no U).
    """

    index: torch.Tensor
    bias: torch.Tensor | None
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __rmul__(self, scale: torch.Tensor) -> LocalPairs:
        # weaver's scale_attn_mask (ParticleBlock: ``c_mask * bias``) scales U, not the index
        return LocalPairs(self.index, None if self.bias is None else scale * self.bias)

    def key_real(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, N, k) bool: the neighbour is a real particle. mask (B, N) bool."""
        B, N, K = self.index.shape
        return mask.gather(1, self.index.reshape(B, N * K)).view(B, 1, N, K)

    def additive_mask(self, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, H or 1, N, N) additive attention mask: U at the real neighbours, the most negative finite value
        elsewhere. Built once per forward and shared by the blocks (the same pairs object reaches them all)."""
        key = (dtype, mask.data_ptr())
        if key not in self._cache:
            self._cache.clear()
            B, N, K = self.index.shape
            lowest = torch.finfo(dtype).min
            values = self.bias.to(dtype) if self.bias is not None else torch.zeros(B, 1, N, K, dtype=dtype, device=mask.device)
            values = values.masked_fill(~self.key_real(mask), lowest)
            dense = torch.full((B, values.size(1), N, N), lowest, dtype=dtype, device=mask.device)
            self._cache[key] = dense.scatter_(3, self.index[:, None].expand_as(values), values)
        return self._cache[key]


def knn_index(eta: torch.Tensor, phi: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """The min(k, N) nearest particles in Delta R (phi wrapped) of every particle, real ones only.

    Args:
        eta, phi: (B, N) coordinates (any values on padding, NaN included).
        mask: (B, N) bool, True for real particles.
        k: neighbours per particle.
    Returns:
        (B, N, min(k, N)) int64, nearest first (``topk``, exportable to ONNX; exact ties in Delta R, which real
        jets have only for duplicated particles, are broken arbitrarily). The padded slots of jets with fewer
        than k real particles point at arbitrary padded positions (they are masked).
    """
    d2 = delta_r2(eta[:, :, None], phi[:, :, None], eta[:, None, :], phi[:, None, :])  # (B, N, N)
    pair_real = mask[:, :, None] & mask[:, None, :]
    d2 = d2.masked_fill(~pair_real, float("inf"))
    return d2.topk(min(k, d2.size(-1)), dim=-1, largest=False, sorted=True).indices


def _gather_keys(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t (B, C, N) at the neighbours: (B, C, N, k), t[b, :, index[b, n, j]] at [b, :, n, j]."""
    B, N, K = index.shape
    return t.gather(2, index.reshape(B, 1, N * K).expand(-1, t.size(1), -1)).view(B, t.size(1), N, K)


def pair_embed_at(pair_embed: PairEmbed, v: torch.Tensor | None, uu: torch.Tensor | None, index: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """weaver PairEmbed's U, evaluated only for the (particle, neighbour) pairs of ``index``.

    The per-pair computation is weaver's: its ``pairwise_lv_fts`` on the two 4-vectors, then its
    ``_embed_pairs`` (BatchNorm + 1x1 convolutions). As its dense path, symmetric features are computed with
    the higher-index particle first, ``remove_self_pair`` gives U = 0 on the diagonal (symmetric) or zero
    features there (asymmetric), and extra pair features ``uu`` are read at [query, key]. Only pairs of two
    real particles are evaluated (also in training, so PairEmbed's BatchNorm statistics are those of the
    evaluated pairs, as in weaver's ``sparse_eval``); the others get U = 0.

    Args:
        pair_embed: weaver's ``PairEmbed``.
        v: (B, 4, N) px, py, pz, E, or None when ``pair_embed`` has no 4-vector features.
        uu: (B, F', N, N) extra pair features, or None.
        index: (B, N, k) neighbours (``knn_index``).
        mask: (B, N) bool, True for real particles.
    Returns:
        (B, H, N, k) U.
    """
    B, N, K = index.shape
    query = torch.arange(N, device=index.device).view(1, N, 1).expand(B, N, K)
    is_self = index == query
    real = mask[:, :, None] & mask.gather(1, index.reshape(B, N * K)).view(B, N, K)  # (B, N, k)
    if pair_embed.is_symmetric and pair_embed.remove_self_pair:
        real = real & ~is_self
    sel = real.nonzero(as_tuple=True)

    def at_pairs(t: torch.Tensor) -> torch.Tensor:  # (B, C, N, k) -> (1, C, P), P = evaluated pairs
        return t.permute(0, 2, 3, 1)[sel].T.unsqueeze(0)

    fts = None
    if v is not None and pair_embed.pairwise_lv_dim > 0:
        xq, xn = v[:, :, :, None].expand(-1, -1, -1, K), _gather_keys(v, index)
        if pair_embed.is_symmetric:  # weaver's tril: features of (i, j) with i >= j
            swap = (index > query)[:, None]
            xq, xn = torch.where(swap, xn, xq), torch.where(swap, xq, xn)
        fts = pair_embed.pairwise_lv_fts(at_pairs(xq), at_pairs(xn))
        if pair_embed.remove_self_pair and not pair_embed.is_symmetric:
            fts = fts.masked_fill(at_pairs(is_self[:, None]), 0.0)
    uu_pairs = None
    if uu is not None:
        uu_pairs = at_pairs(uu.gather(3, index[:, None].expand(-1, uu.size(1), -1, -1)))
    elements = pair_embed._embed_pairs(fts, uu_pairs)  # (1, H, P)
    out = elements.new_zeros(B, N, K, elements.size(1))
    out[sel] = elements[0].T
    return out.permute(0, 3, 1, 2)


class LocalAttentionMixer(AttentionMixer):
    """Attention of each particle over its k nearest neighbours in Delta R, U added for those pairs.

    ``forward(x (B, N, C), mask (B, N), pairs: LocalPairs) -> (B, N, C)``: softmax over the k neighbours' keys
    of ``q k^T / sqrt(d) + U``, padded keys masked as in ``partx.nn.attention.additive_mask`` (most negative
    finite logit). Parameters, initialisation and the weaver attention options (qk-norm, output gates) are
    ``AttentionMixer``'s, so a ParT checkpoint's attention loads unchanged; with k >= N it computes full
    attention with U.

    Two evaluations of the same function (``attend``):
      * "masked" (default): the (B, H, N, N) additive mask is -inf (most negative finite) except at the
        neighbours, where it holds their U, and torch SDPA runs on it: the logits of non-neighbours are
        computed and discarded, but by one GEMM; at jet sizes (N ~ 128) on CPU this is as fast as ParT's
        attention, while gathering keys moves k copies of every key through memory (several times slower
        per layer at B = 64, N = 128 on CPU, docs/local_attention.md);
      * "gather": keys and values of the neighbours gathered, O(N k d) per head: the choice for long sequences.

    Args:
        embed_dim, num_heads, dropout, bias, use_qk_norm, norm_layer, output gates: as ``AttentionMixer``.
        k: neighbours per particle (itself included).
        attend: "masked" or "gather" (above).
    """

    pair_mode = "local"

    @strict_options(forwarded=AttentionMixer.attention_options)
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, k: int = 16, attend: str = "masked",
                 **attention_options: object):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"local attention: k must be a positive int, got {k!r}")
        if attend not in ("masked", "gather"):
            raise ValueError(f"local attention: attend must be 'masked' or 'gather', got {attend!r}")
        super().__init__(embed_dim, num_heads, dropout, backend="sdpa", **attention_options)
        self.k, self.attend = k, attend

    def neighbours(self, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """v (B, 4, N) px, py, pz, E; mask (B, N) -> (B, N, min(k, N)) neighbour index (``knn_index``)."""
        _, rapidity, phi = to_ptrapphim(v, return_mass=False, eps=None).unbind(1)
        return knn_index(rapidity, phi, mask, self.k)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pairs: LocalPairs | None = None) -> torch.Tensor:
        if not isinstance(pairs, LocalPairs):
            raise TypeError("LocalAttentionMixer needs LocalPairs (neighbour index and U), as the ParT skeleton "
                            f"builds for mixers with pair_mode='local'; got {type(pairs).__name__}")
        q, k, v = self.split_heads(x)  # (B, H, N, D)
        B, H, N, D = k.shape
        index = pairs.index
        K = index.size(-1)
        dropout_p = self.dropout if self.training else 0.0
        if self.attend == "masked":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=pairs.additive_mask(mask, q.dtype), dropout_p=dropout_p)
            return self.merge_heads(out, x)
        key_real, lowest = pairs.key_real(mask), torch.finfo(q.dtype).min
        flat = index.reshape(B, 1, N * K, 1).expand(-1, H, -1, D)
        k_nb, v_nb = (t.gather(2, flat).view(B, H, N, K, D) for t in (k, v))
        logits = torch.einsum("bhnd,bhnkd->bhnk", q * D**-0.5, k_nb)
        if pairs.bias is not None:
            logits = logits + pairs.bias.to(logits.dtype)
        logits = logits.masked_fill(~key_real, lowest)
        weights = logits.softmax(dim=-1)
        if dropout_p > 0:
            weights = F.dropout(weights, p=dropout_p)
        out = torch.einsum("bhnk,bhnkd->bhnd", weights, v_nb)
        return self.merge_heads(out, x)
