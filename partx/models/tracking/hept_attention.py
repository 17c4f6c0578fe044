"""HEPT's LSH attention as a point-cloud mixer: ``mixer(x (B, N, C), coords (B, N, D), mask (B, N), ctx)``.

Follows Graph-COM/HEPT ``example/hept.py`` (``HEPTAttention``, ``prep_qk``, ``qkv_res``) and the ``Attn``
projections of ``example/transformer.py``, batched and padding-masked through ``partx.nn.lsh``:

  * q, k, v = x W_q, x W_k, x W_v, H heads of width C each (HEPT's heads are as wide as the model);
  * the coordinates are appended to q and k scaled per head by ``sqrt(2 w_h)``, with
    ``w_h = sum_k exp(min(50, sum_d W_rpe[h, d, r, k]))`` a learned positive weight per coordinate group r
    (eta and phi share the first group: they enter dR together); so ``-1/2 |q^ - k^|^2`` adds
    ``-w_h |c_q - c_k|^2`` to the feature distance (HEPT's RBF kernel with a learned length scale);
  * frozen Gaussian projections ``alpha`` (H, C + D, T) hash q^ and k^ (E2LSH, T OR-tables), the eta-phi
    region codes of the table/head (AND) are the most significant part of the sort key;
  * RBF attention ``exp(-1/2 |q^ - k^|^2)`` inside blocks, tables OR-combined (sum of numerators over sum of
    denominators), then ``out_proj`` (H C -> C).
Only W_rpe's weight is used (its bias exists in HEPT's checkpoint and is loaded, unused, as in HEPT).
"""

from __future__ import annotations

import torch
from torch import nn

from partx.nn.lsh import gaussian_projections, lsh_block_attention, lsh_sort_keys


class HEPTAttention(nn.Module):
    """LSH block attention with an RBF kernel (HEPT).

    Args:
        dim: C, model width (= width of each head).
        num_heads: H.
        coords_dim: D, number of coordinate columns appended to q, k (columns 0, 1 = eta, phi).
        n_hashes: T, OR tables.
        block_size: points per LSH block.
        num_w_per_dist: W_rpe weights per coordinate group (HEPT: 10).
        seed: seed of the frozen projections (None: global RNG, as HEPT).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        coords_dim: int = 6,
        n_hashes: int = 3,
        block_size: int = 100,
        num_w_per_dist: int = 10,
        seed: int | None = None,
    ):
        super().__init__()
        self.dim, self.num_heads, self.coords_dim = dim, num_heads, coords_dim
        self.n_hashes, self.block_size, self.num_w_per_dist = n_hashes, block_size, num_w_per_dist
        inner = dim * num_heads
        self.w_q = nn.Linear(dim, inner, bias=False)
        self.w_k = nn.Linear(dim, inner, bias=False)
        self.w_v = nn.Linear(dim, inner, bias=False)
        self.w_rpe = nn.Linear(num_w_per_dist * (coords_dim - 1), inner)
        self.out_proj = nn.Linear(inner, dim)
        self.register_buffer("alpha", gaussian_projections(dim + coords_dim, n_hashes, num_heads, seed=seed))

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, tables={self.n_hashes}, block_size={self.block_size}"

    def coord_scale(self) -> torch.Tensor:
        """(H, D) per-head scale ``sqrt(2 w)`` of the appended coordinates (HEPT ``prep_qk``)."""
        H, C, k = self.num_heads, self.dim, self.num_w_per_dist
        w = self.w_rpe.weight.view(H, C, self.coords_dim - 1, k)  # "(h d) (r k) -> h d r k"
        qw = w.sum(dim=1).clamp(max=50).exp().sum(dim=-1)  # (H, D - 1)
        return torch.sqrt(2 * torch.cat([qw[:, :1], qw], dim=-1))

    def forward(self, x: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor, ctx: dict) -> torch.Tensor:
        """x (B, N, C) (already normalised), coords (B, N, D), mask (B, N); ctx["hept_codes"] (B, T, H, N)
        region codes or None -> (B, N, C)."""
        B, N, C = x.shape
        H = self.num_heads
        heads = lambda t: t.view(B, N, H, C).transpose(1, 2)  # noqa: E731  (B, H, N, C)
        q, k, v = heads(self.w_q(x)), heads(self.w_k(x)), heads(self.w_v(x))
        rel = self.coord_scale()[None, :, None, :] * coords[:, None]  # (B, H, N, D)
        q_hat, k_hat = torch.cat([q, rel], -1), torch.cat([k, rel], -1)
        with torch.no_grad():
            alpha = self.alpha.to(q_hat.dtype)
            q_proj = (q_hat @ alpha).permute(0, 3, 1, 2)  # (B, T, H, N)
            k_proj = (k_hat @ alpha).permute(0, 3, 1, 2)
            q_key, k_key = lsh_sort_keys(q_proj, k_proj, ctx.get("hept_codes"), mask)
        out = lsh_block_attention(q_hat, k_hat, v, q_key, k_key, mask, self.block_size)  # (B, H, N, C)
        return self.out_proj(out.transpose(1, 2).reshape(B, N, H * C))
