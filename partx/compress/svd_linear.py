"""A Linear layer parameterised by its SVD with a learnable soft threshold on the singular values.

SoftLMs (Bhatnagar, Wen, Kang, arXiv:2411.10543) choose each layer's rank by clipping small singular
values with a *differentiable* soft threshold learned per layer during a short fine-tune with a
compression penalty, then keep only the singular directions that survive. partx's soft function
(SoftLMs' idea; this exact form is partx's choice, see docs/quantization.md):

    W = U diag(s) V^T  (thin SVD of the trained weight, s_1 >= s_2 >= ...)
    tau = s_1 * sigmoid(theta)                      learnable per-layer threshold (theta trained)
    g_i = sigmoid((s_i - tau) / (T * s_1))          soft gate, T = ``temperature`` (default 0.02)
    W_eff = U diag(s * g) V^T                       what the layer computes while fine-tuning
    soft rank = sum_i g_i                           differentiable rank, used by the penalty

U, s and V are trained as well. ``theta`` starts at ``init_threshold`` * s_1 (default 1e-3: every
gate ~1, the layer equals the original). ``materialise`` keeps the directions with g_i > 1/2 (s_i > tau)
and writes ``LowRankLinear``: x -> (x V_r^T) (U_r diag(s_r g_r))^T + b, two smaller Linears.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SVDLinear", "LowRankLinear"]


class SVDLinear(nn.Module):
    """``nn.Linear`` as U diag(s * gate(s)) V^T + b with a learnable threshold (module docstring).

    Args:
        linear: the trained layer (in_features -> out_features); its SVD is taken in float64.
        temperature: gate width relative to the largest singular value.
        init_threshold: initial tau / s_1.
        soft: False -> no gate (exactly the factorised original, for tests and full-rank checks).
    """

    def __init__(self, linear: nn.Linear, temperature: float = 0.02, init_threshold: float = 1e-3, soft: bool = True):
        super().__init__()
        w = linear.weight.detach().double()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (out, k), (k,), (k, in)
        dtype = linear.weight.dtype
        self.U = nn.Parameter(u.to(dtype))
        self.S = nn.Parameter(s.to(dtype))
        self.Vh = nn.Parameter(vh.to(dtype))
        self.bias = nn.Parameter(linear.bias.detach().clone()) if linear.bias is not None else None
        self.register_buffer("s_max", s[0].to(dtype).clamp_min(1e-12).clone())
        self.temperature, self.soft = float(temperature), bool(soft)
        p = min(max(init_threshold, 1e-6), 1 - 1e-6)
        self.theta = nn.Parameter(torch.tensor(math.log(p / (1 - p)), dtype=dtype))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    @property
    def threshold(self) -> torch.Tensor:
        return self.s_max * torch.sigmoid(self.theta)

    def gate(self) -> torch.Tensor:
        """(k,) soft gate in (0, 1) per singular value (ones when ``soft`` is False)."""
        if not self.soft:
            return torch.ones_like(self.S)
        return torch.sigmoid((self.S - self.threshold) / (self.temperature * self.s_max))

    def soft_rank(self) -> torch.Tensor:
        return self.gate().sum()

    def hard_rank(self) -> int:
        """Directions kept by ``materialise``: gate > 1/2."""
        return int((self.gate() > 0.5).sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (..., in) -> (..., out)
        h = F.linear(x, self.Vh) * (self.S * self.gate())
        return F.linear(h, self.U, self.bias)

    def materialise(self, rank: int | None = None) -> nn.Module:
        """Two Linears at ``rank`` (default ``hard_rank``); the original-size dense Linear when that saves
        no parameters (r (in + out) >= in * out)."""
        r = self.hard_rank() if rank is None else int(rank)
        with torch.no_grad():
            s = self.S * self.gate()
            keep = torch.argsort(s, descending=True)[:r]
            if r * (self.in_features + self.out_features) >= self.in_features * self.out_features:
                dense = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, dtype=self.U.dtype)
                dense.weight.copy_((self.U * s) @ self.Vh)
                if self.bias is not None:
                    dense.bias.copy_(self.bias)
                return dense
            return LowRankLinear.from_factors(self.Vh[keep], self.U[:, keep] * s[keep], self.bias)


class LowRankLinear(nn.Module):
    """x -> second(first(x)): ``first`` in -> r without bias, ``second`` r -> out with the layer's bias."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank

    @classmethod
    def from_factors(cls, vh: torch.Tensor, us: torch.Tensor, bias: torch.Tensor | None) -> "LowRankLinear":
        """vh (r, in), us (out, r) = U_r diag(s_r), bias (out,) or None."""
        m = cls(vh.shape[1], us.shape[0], vh.shape[0], bias is not None).to(vh.dtype)
        with torch.no_grad():
            m.first.weight.copy_(vh)
            m.second.weight.copy_(us)
            if bias is not None:
                m.second.bias.copy_(bias)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))
