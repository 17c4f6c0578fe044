"""Hit orderings for the Mamba tracking encoders: which hit a scan visits first.

All return permutations (B, N) with the real hits first and the padding last (the Mamba mixer needs the
real tokens as a prefix); ``partx.nn.lsh.inverse_permutation`` undoes them.

  * ``stored_order``: hits in their stored order (pure Mamba, Mamba-a).
  * ``LSHOrdering`` (partx's Mamba-b, the paper's "OR & AND E2LSH"): T tables; in each, the key is the
    tuple ``(eta-phi quantile region, h_1, ..., h_m, a_1 . c)`` sorted lexicographically, with
    ``h_j = floor((a_j . c + b_j) / w)`` E2LSH functions of the hit coordinates c (AND: a hit's neighbours in the
    scan share its region and all m codes) and the raw projection ``a_1 . c`` ordering the hits inside the
    finest bucket. OR: the encoder gives layer l the order of table ``l mod T`` (each layer scans a
    different LSH order, so over the depth a hit meets the union of its buckets' neighbours).
  * ``lampa_order`` (Lampa ``models/baselines/hmamba.py`` ``LSHOrdering``, model ``hmambav1``): hits sorted by
    the norm of their coordinates, then stable-sorted by one key ``sum_i 2^i (a_i . c)`` of three raw
    Gaussian projections (no quantisation, no regions, one table), applied once before all blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from partx.nn.lsh import e2lsh_params, hept_region_counts, lexsort, region_codes


def stored_order(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) permutation keeping the stored order of real hits, padding moved last (stable)."""
    return torch.sort((~mask).to(torch.int8), dim=-1, stable=True).indices


def lampa_order(coords: torch.Tensor, mask: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Lampa's single-projection ordering. coords (B, N, D), mask (B, N), a (D, K) -> perm (B, N)."""
    proj = coords @ a.to(coords)  # (B, N, K)
    key = (proj * (2.0 ** torch.arange(a.shape[1], device=coords.device, dtype=coords.dtype))).sum(-1)
    norm = coords.norm(dim=-1)
    return lexsort([key, norm], mask)  # norm pre-sort = least significant, then stable by key


class LSHOrdering(nn.Module):
    """OR & AND E2LSH hit orderings (see module doc).

    Args:
        coords_dim: D.
        n_tables: T (OR).
        n_and: m quantised E2LSH functions per table (AND), besides the region code.
        bucket_width: w of the E2LSH functions (in coordinate units).
        num_regions: target number of eta-phi quantile regions per table (HEPT's ``num_regions``); 0 = none.
        seed: seed of projections and region counts.
    """

    def __init__(self, coords_dim: int, n_tables: int = 3, n_and: int = 2, bucket_width: float = 0.5, num_regions: float = 150.0, seed: int = 0):
        super().__init__()
        self.n_tables, self.n_and, self.bucket_width, self.num_regions = n_tables, n_and, bucket_width, num_regions
        a, b = e2lsh_params(coords_dim, n_tables * n_and, bucket_width, seed=seed, dtype=torch.float32)
        self.register_buffer("a", a.view(coords_dim, n_tables, n_and))
        self.register_buffer("b", b.view(n_tables, n_and))
        if num_regions:
            g = torch.Generator().manual_seed(seed + 1)
            counts = hept_region_counts(num_regions, n_tables, 1, generator=g)[..., 0]  # (T, 2)
            self.register_buffer("counts", counts.t().contiguous())  # (2, T)
        else:
            self.counts = None

    def extra_repr(self) -> str:
        return f"tables={self.n_tables}, and={self.n_and}, width={self.bucket_width}, regions={self.num_regions}"

    @torch.no_grad()
    def forward(self, coords: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """coords (B, N, D), mask (B, N) -> T permutations (B, N), real hits first."""
        proj = torch.einsum("bnd,dtm->btmn", coords, self.a.to(coords))  # (B, T, m, N)
        codes = torch.floor((proj + self.b.to(coords)[None, :, :, None]) / self.bucket_width)
        regions = region_codes(coords, self.counts, mask).to(coords.dtype) if self.counts is not None else None
        perms = []
        for t in range(self.n_tables):
            keys = ([regions[:, t]] if regions is not None else []) + list(codes[:, t].unbind(1)) + [proj[:, t, 0]]
            perms.append(lexsort(keys, mask))
        return perms
