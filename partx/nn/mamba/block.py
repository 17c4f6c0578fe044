"""Mamba-1 and Mamba-2 blocks whose parameters are named and shaped exactly as mamba-ssm's
``Mamba`` (mamba_ssm/modules/mamba_simple.py) and ``Mamba2`` (mamba_ssm/modules/mamba2.py), so a
mamba-ssm checkpoint loads here with ``load_state_dict`` (strict) and evaluates on CPU, and the other
way round. The scan itself is chosen at run time (``partx.nn.mamba.backend``).

Mamba-1 (``MambaBlock``), for x (B, L, d_model), d_inner = expand * d_model, R = dt_rank::

    in_proj  (2 d_inner, d_model)         -> x, z            (x first, then the gate z)
    conv1d   (d_inner, 1, d_conv) + bias  causal depthwise conv over time, then SiLU
    x_proj   (R + 2 N, d_inner)           -> dt (R), B (N), C (N)   per token
    dt_proj  (d_inner, R) + bias          dt = softplus(dt_proj(dt))   (bias added inside the scan)
    A_log    (d_inner, N)                 A = -exp(A_log)
    D        (d_inner,)                   skip
    out_proj (d_model, d_inner)           applied to scan(x) * silu(z)

Mamba-2 (``Mamba2Block``), ngroups G, nheads H = d_inner / headdim::

    in_proj  (2 d_inner + 2 G N + H, d_model)   -> z, x, B, C, dt  (in this order)
    conv1d   (d_inner + 2 G N, 1, d_conv) + bias over [x, B, C], then SiLU
    dt_bias, A_log, D   (H,)                  scalar decay A = -exp(A_log) per head
    norm.weight (d_inner,)                    gated RMSNorm: rmsnorm(y * silu(z)) * weight (per group)
    out_proj (d_model, d_inner)

Deviations from mamba-ssm (documented in docs/mamba.md): no inference cache / ``step`` (particle
mixers see the whole jet at once); Mamba-2 supports only its default options on the paths we use
(no d_ssm < d_inner MLP split, D per head not per channel, no dt_limit clamping, no sequence parallel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from partx.nn.mamba.backend import selective_scan, ssd_scan


def _init_dt_bias(n: int, dt_min: float, dt_max: float, dt_init_floor: float) -> torch.Tensor:
    """Bias such that softplus(bias) is log-uniform in [dt_min, dt_max] (mamba-ssm's initialisation)."""
    dt = torch.exp(torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=dt_init_floor)
    return dt + torch.log(-torch.expm1(-dt))  # inverse of softplus


def causal_depthwise_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """(B, C, L) -> (B, C, L). The conv pads d_conv - 1 on both sides; keeping the first L outputs
    makes it causal, which is what lets padding *after* the real tokens never reach them."""
    return conv(x)[..., : x.shape[-1]]


class MambaBlock(nn.Module):
    """Mamba-1 token mixer ``(B, L, d_model) -> (B, L, d_model)``, causal along L."""

    #: child Linears whose weight ``forward`` reads directly (dt_proj's bias goes into the scan): not
    #: swappable for a quantized module (``partx.quant``)
    functional_linears = ("dt_proj",)

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        backend: str | None = None,
    ):
        super().__init__()
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.backend = backend  # None: follow partx.config.mamba_backend()
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise ValueError(f"dt_init must be 'random' or 'constant', not {dt_init!r}")
        with torch.no_grad():
            self.dt_proj.bias.copy_(_init_dt_bias(self.d_inner, dt_min, dt_max, dt_init_floor))
        # S4D-real: A[d, n] = -(n + 1), kept as log in fp32.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, L, d_model) -> (B, L, d_model)."""
        xz = self.in_proj(hidden).transpose(1, 2)  # (B, 2 d_inner, L): the scan wants channels before time
        x, z = xz.chunk(2, dim=1)
        x = F.silu(causal_depthwise_conv(self.conv1d, x))
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # (B, d_inner, L); bias goes in as delta_bias
        A = -torch.exp(self.A_log.float())
        y = selective_scan(
            x, dt, A, B.transpose(1, 2), C.transpose(1, 2), self.D.float(), z=z,
            delta_bias=self.dt_proj.bias.float(), delta_softplus=True, backend=self.backend,
        )  # (B, d_inner, L)
        return self.out_proj(y.transpose(1, 2))


class GatedRMSNorm(nn.Module):
    """mamba-ssm's ``RMSNormGated`` with norm_before_gate=False: ``rmsnorm(y * silu(z)) * weight``,
    the RMS taken per group of ``group_size`` channels. y, z (..., d)."""

    def __init__(self, d: int, eps: float = 1e-5, group_size: int | None = None):
        super().__init__()
        self.eps, self.group_size = eps, group_size or d
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return gated_rmsnorm(y, z, self.weight, self.group_size, self.eps)


def gated_rmsnorm(y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, group_size: int, eps: float) -> torch.Tensor:
    """``rmsnorm(y * silu(z)) * weight``, RMS per group of ``group_size`` channels. y, z (..., d); weight (d,)."""
    y = y.float() * F.silu(z.float())
    g = y.unflatten(-1, (-1, group_size))
    g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + eps)
    return g.flatten(-2) * weight.float()


class Mamba2Block(nn.Module):
    """Mamba-2 (SSD) token mixer ``(B, L, d_model) -> (B, L, d_model)``, causal along L."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 128,
        d_conv: int = 4,
        expand: int = 2,
        headdim: int = 64,
        ngroups: int = 1,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        bias: bool = False,
        conv_bias: bool = True,
        chunk_size: int | None = None,
        backend: str | None = None,
    ):
        super().__init__()
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = expand * d_model
        assert self.d_inner % headdim == 0, f"d_inner {self.d_inner} not divisible by headdim {headdim}"
        self.headdim, self.ngroups = headdim, ngroups
        self.nheads = self.d_inner // headdim
        assert self.nheads % ngroups == 0, f"nheads {self.nheads} not divisible by ngroups {ngroups}"
        self.chunk_size, self.backend = chunk_size, backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * ngroups * d_state + self.nheads, bias=bias)
        conv_dim = self.d_inner + 2 * ngroups * d_state
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=conv_bias)
        self.dt_bias = nn.Parameter(_init_dt_bias(self.nheads, dt_min, dt_max, dt_init_floor))
        A = torch.empty(self.nheads).uniform_(*A_init_range)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(self.nheads))
        for p in (self.dt_bias, self.A_log, self.D):
            p._no_weight_decay = True
        self.norm = GatedRMSNorm(self.d_inner, eps=1e-5, group_size=self.d_inner // ngroups)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, L, d_model) -> (B, L, d_model)."""
        batch, length, _ = hidden.shape
        gn = self.ngroups * self.d_state
        z, xBC, dt = self.in_proj(hidden).split([self.d_inner, self.d_inner + 2 * gn, self.nheads], dim=-1)
        xBC = F.silu(causal_depthwise_conv(self.conv1d, xBC.transpose(1, 2))).transpose(1, 2)
        x, B, C = xBC.split([self.d_inner, gn, gn], dim=-1)
        y = ssd_scan(
            x.unflatten(-1, (self.nheads, self.headdim)), dt, -torch.exp(self.A_log.float()),
            B.unflatten(-1, (self.ngroups, self.d_state)), C.unflatten(-1, (self.ngroups, self.d_state)),
            D=self.D, dt_bias=self.dt_bias, dt_softplus=True, chunk_size=self.chunk_size, backend=self.backend,
        )  # (B, L, H, P)
        y = self.norm(y.flatten(-2), z)
        return self.out_proj(y.to(hidden.dtype))
