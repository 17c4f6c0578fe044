"""E2LSH with OR & AND, bucketing by sort, fixed-size blocks: the one LSH of partx.

Vocabulary (Datar et al. 2004; the seed paper, Sec. 2.2; HEPT, arXiv:2402.12535):
  * **E2LSH function** ``h(x) = floor((a . x + b) / w)`` with a ~ N(0, I) frozen (seeded), b ~ U(0, w).
    HEPT does not quantise: it sorts points by the raw projection ``a . x`` (Graph-COM/HEPT
    ``example/hept_utils.py`` ``E2LSH`` + ``lsh_mapping``), which is the w -> 0 limit of the same family
    once points are cut into fixed-size blocks after sorting ("bucketing by sort": a bucket is a block of
    ``block_size`` consecutive points in hash order, so every bucket has the same size and cost).
  * **AND** (one table = several functions that must all agree): the table's sort key is the tuple
    ``(region, h_1, ..., h_m)`` ordered lexicographically. HEPT's extra AND codes are the eta-phi
    *quantile regions* (``quantile_partition`` / ``get_regions`` in ``example/hept_utils.py``): each table
    cuts the eta axis and the phi axis into a (non-integer, randomly drawn) number of equal-count slices;
    the region index ``(phi_slice << bits) | eta_slice`` (``bit_shift`` in ``example/transformer.py``) is
    the most significant part of the key, so a block never mixes points that are far apart in eta-phi
    unless a region is smaller than a block.
  * **OR** (several tables; a pair counts as neighbours if it shares a block in *any* table): attention runs
    once per table and the tables are combined as HEPT combines them (``example/hept.py``): the kernel
    numerators and denominators are summed over tables before dividing, ``out = sum_t num_t / sum_t den_t``.
    ``lsh_block_attention`` does exactly that.

Everything is batched ``(B, ..., N, ...)`` with a padding mask ``(B, N)`` (True = real): quantiles, shifts and
sort keys are computed over the real points of each event only, padded points get the key +inf (they sort
after every real point), and padded keys get zero weight. Because real points occupy the first sorted
positions and blocks start at position 0, the blocks of real points do not depend on how much padding an
event has, and events of a batch never share a block.

``partx.nn.ordering`` (kind ``lsh``) draws its projections with ``e2lsh_params`` and hashes with
``e2lsh_codes``. The Reformer mixer (``partx.nn.reformer``) keeps its own *angular* LSH (random rotations,
``argmax([xR, -xR])``): that is the reformer-pytorch family its equivalence test pins, not E2LSH; it reuses
nothing here yet because re-expressing it would change its tested buckets (see docs/tracking_models.md).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "inverse_permutation",
    "e2lsh_params",
    "e2lsh_codes",
    "gaussian_projections",
    "quantile_regions",
    "combine_codes",
    "region_codes",
    "hept_region_counts",
    "lsh_sort_keys",
    "lexsort",
    "pad_to_blocks",
    "lsh_block_attention",
]


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    """(..., N) -> inv with ``inv[..., perm[..., i]] = i`` (gathering with perm then inv is the identity)."""
    positions = torch.arange(perm.shape[-1], device=perm.device).expand_as(perm)
    return torch.empty_like(perm).scatter_(-1, perm, positions)


def e2lsh_params(dim: int, n_proj: int, width: float, seed: int = 0, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen E2LSH parameters: a (dim, n_proj) ~ N(0, 1), b (n_proj,) ~ U(0, width), drawn from ``seed``
    on the CPU so every call, device and process agrees."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, n_proj, generator=g, dtype=dtype)
    b = torch.rand(n_proj, generator=g, dtype=dtype) * width
    return a, b


def e2lsh_codes(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, width: float) -> torch.Tensor:
    """Quantised E2LSH codes ``floor((x . a + b) / width)``. x (..., D), a (D, K), b (K,) -> (..., K) float."""
    return torch.floor((x @ a.to(x) + b.to(x)) / width)


def gaussian_projections(dim: int, n_proj: int, n_heads: int = 1, seed: int | None = None) -> torch.Tensor:
    """(n_heads, dim, n_proj) N(0, 1) projections (HEPT's ``E2LSH.alpha`` layout). ``seed=None`` draws from the
    global RNG (as HEPT does at construction; the tensor is then saved in the state_dict)."""
    g = None if seed is None else torch.Generator().manual_seed(seed)
    return torch.randn(n_heads, dim, n_proj, generator=g)


def _ranks(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rank (0-based, ascending) of each real value within its event; padded entries rank after all real ones."""
    v = values.masked_fill(~mask, math.inf)
    return inverse_permutation(torch.argsort(v, dim=-1))


def quantile_regions(values: torch.Tensor, n_regions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Equal-count slices along one coordinate (HEPT ``quantile_partition``), per event, real points only.

    Args:
        values: (B, N) coordinate (e.g. eta).
        n_regions: (R,) float number of slices per table/head (HEPT draws non-integer counts).
        mask: (B, N) bool.
    Returns:
        (B, R, N) long slice index in 1..ceil(n_regions) for real points (HEPT counts from 1), 0 for padding.
    """
    n_real = mask.sum(-1).to(n_regions.dtype)  # (B,)
    size = torch.ceil(n_real[:, None] / n_regions[None, :])  # (B, R) points per slice
    rank = _ranks(values, mask).to(n_regions.dtype)  # (B, N)
    idx = torch.div(rank[:, None, :], size[..., None], rounding_mode="floor") + 1
    return idx.long().masked_fill(~mask[:, None, :], 0)


def combine_codes(low: torch.Tensor, high: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(high << bits) | low`` with bits = ceil(log2(max(low) + 1)) per event and row (HEPT ``bit_shift``).

    low, high: (B, R, N) long; the max runs over the real points of each event."""
    max_low = low.masked_fill(~mask[:, None, :], 0).amax(-1, keepdim=True)
    bits = torch.ceil(torch.log2(max_low.double() + 1)).long()
    # + instead of |: the same value (low < 2**bits, so the bits do not overlap), and ONNX exports it
    # (the TorchScript ONNX exporter has no bitwise OR on integers)
    return (high << bits) + low


def region_codes(coords: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """AND region code of every point per table/head from eta-phi quantile slices.

    Args:
        coords: (B, N, >=2); columns 0, 1 are eta, phi (HEPT's convention).
        counts: (2, R) float slice counts along eta (row 0) and phi (row 1), one column per table/head.
        mask: (B, N) bool.
    Returns:
        (B, R, N) long region codes ``(phi_slice << bits) | eta_slice`` (0 on padding).
    """
    eta = quantile_regions(coords[..., 0], counts[0], mask)
    phi = quantile_regions(coords[..., 1], counts[1], mask)
    return combine_codes(eta, phi, mask)


def hept_region_counts(num_regions: float, n_tables: int, n_heads: int, n_and: int = 2, generator=None) -> torch.Tensor:
    """HEPT's random region counts (``get_regions``), layout (tables, 2, heads): per table and head, n_and
    factors drawn in [2, 2 * num_regions^(1/n_and) - 2], rescaled so their product is num_regions, rounded
    to thirds. Uses the global RNG unless a generator is given (HEPT saves the result in its state_dict)."""
    lb = 2.0
    ub = 2 * num_regions ** (1 / n_and) - lb
    r = torch.rand(n_tables * n_heads, n_and, generator=generator, dtype=torch.float64).float() * (ub - lb) + lb
    r = (num_regions / r.prod(dim=1, keepdim=True)) ** (1 / n_and) * r
    r = torch.round(r * 3) / 3
    return r.view(n_heads, n_tables, n_and).permute(1, 2, 0).contiguous()  # "(h c) a -> c a h"


def lsh_sort_keys(
    q_proj: torch.Tensor, k_proj: torch.Tensor, codes: torch.Tensor | None, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort keys ``region * shift + projection`` for queries and keys (HEPT ``lsh_mapping`` + shifts).

    ``shift`` = (max - min) of the projections over the real queries *and* keys of the event, so the key
    orders by region first and by projection inside a region (ties at region edges aside). The arithmetic
    is HEPT's (float32 ``proj + code * shift``), so orders match HEPT's bit for bit on the same projections.

    Args:
        q_proj, k_proj: (B, T, H, N) raw projections per table T and head H.
        codes: (B, T, H, N) long AND region codes, or None.
        mask: (B, N) bool.
    Returns:
        q_key, k_key: (B, T, H, N); +inf on padding.
    """
    m = mask[:, None, None, :]
    big = torch.finfo(q_proj.dtype).max
    hi = torch.maximum(q_proj.masked_fill(~m, -big).amax(-1, keepdim=True), k_proj.masked_fill(~m, -big).amax(-1, keepdim=True))
    lo = torch.minimum(q_proj.masked_fill(~m, big).amin(-1, keepdim=True), k_proj.masked_fill(~m, big).amin(-1, keepdim=True))
    shift = hi - lo
    if codes is not None:
        offset = codes * shift  # long * float -> float, as HEPT
        q_proj, k_proj = q_proj + offset, k_proj + offset
    return q_proj.masked_fill(~m, math.inf), k_proj.masked_fill(~m, math.inf)


def lexsort(keys: list[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Permutation (..., N) sorting lexicographically by ``keys`` (most significant first), padding last.

    Each key (..., N); implemented as successive stable sorts from the least significant key."""
    perm = None
    seq = list(keys)
    if mask is not None:
        seq = [(~mask).to(keys[0].dtype).expand_as(keys[0])] + seq
    for key in reversed(seq):
        k = key if perm is None else key.gather(-1, perm)
        p = torch.sort(k, dim=-1, stable=True).indices
        perm = p if perm is None else perm.gather(-1, p)
    return perm


def pad_to_blocks(n: int, block_size: int) -> int:
    """Smallest multiple of ``block_size`` >= n (at least one block)."""
    return max(1, -(-n // block_size)) * block_size


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (..., N, D), idx (..., M) -> (..., M, D) (leading dims of idx broadcast over x's)."""
    x = x.expand(*idx.shape[:-1], *x.shape[-2:])
    return x.gather(-2, idx[..., None].expand(*idx.shape, x.shape[-1]))


def lsh_block_attention(
    q_hat: torch.Tensor,
    k_hat: torch.Tensor,
    v: torch.Tensor,
    q_key: torch.Tensor,
    k_key: torch.Tensor,
    mask: torch.Tensor,
    block_size: int,
) -> torch.Tensor:
    """RBF-kernel attention inside LSH blocks, OR-combined over tables (HEPT ``HEPTAttention.forward``).

    Queries and keys are sorted separately by their keys and cut into blocks of ``block_size``; query
    block i attends to key block i with weights ``exp(min(0, -1/2 |q - k|^2))`` (HEPT's ``qkv_res``; the
    clamp only guards rounding). ``out = sum_t num_t / (sum_t den_t)`` with ``den_t = sum_j w_ij + 1e-20``.

    Args:
        q_hat, k_hat: (B, H, N, Dk) queries / keys (coordinates already appended).
        v: (B, H, N, Dv).
        q_key, k_key: (B, T, H, N) sort keys (+inf on padding), T tables.
        mask: (B, N) bool; padded keys get zero weight, padded query outputs are 0.
        block_size: points per block.
    Returns:
        (B, H, N, Dv).
    """
    B, H, N, _ = q_hat.shape
    L = pad_to_blocks(N, block_size)
    pad = L - N
    if pad:
        inf = q_key.new_full((*q_key.shape[:-1], pad), math.inf)
        q_key, k_key = torch.cat([q_key, inf], -1), torch.cat([k_key, inf], -1)
        q_hat, k_hat, v = (torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in (q_hat, k_hat, v))
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
    q_pos, k_pos = q_key.argsort(-1), k_key.argsort(-1)  # (B, T, H, L)
    nb = L // block_size
    sq = _gather(q_hat[:, None], q_pos).unflatten(-2, (nb, block_size))  # (B, T, H, nb, bs, Dk)
    sk = _gather(k_hat[:, None], k_pos).unflatten(-2, (nb, block_size))
    sv = _gather(v[:, None], k_pos).unflatten(-2, (nb, block_size))
    kmask = mask[:, None, None, :].expand_as(k_pos).gather(-1, k_pos).unflatten(-1, (nb, block_size))
    logits = sq @ sk.transpose(-1, -2) - 0.5 * (sq * sq).sum(-1, keepdim=True) - 0.5 * (sk * sk).sum(-1)[..., None, :]
    w = logits.clamp(max=0.0).exp() * kmask[..., None, :].to(logits.dtype)
    den = w.sum(-1, keepdim=True) + 1e-20
    num = w @ sv  # (B, T, H, nb, bs, Dv)
    q_inv = inverse_permutation(q_pos)
    num = _gather(num.flatten(-3, -2), q_inv).sum(1)  # unsort, then OR: sum over tables
    den = _gather(den.flatten(-3, -2), q_inv).sum(1)
    out = (num / den)[..., :N, :]
    return out * mask[:, None, :N, None].to(out.dtype)
