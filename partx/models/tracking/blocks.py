"""One block skeleton and the shared pieces (input encoder, output head) of the tracking encoders.

``ResidualBlock``: ``x = x + drop(mixer(norm1(x), coords, mask, ctx))``, then, if it has one,
``x = x + drop(ff(norm2(x)))``. With an attention mixer and the FF this is HEPT's ``Attn``
(Graph-COM/HEPT ``example/transformer.py``); with a Mamba mixer and no FF it is mamba-ssm's ``Block``
(add -> norm -> mixer) as Lampa stacks it (``models/baselines/hmamba.py`` ``MixerModel``).

``OrderedMamba``: the bidirectional Mamba mixer of partx (``partx.nn.mamba.mixer.BiMambaMixer``, backends
as MambaParT: chunked CPU scan, mamba-ssm kernels on CUDA) applied to the hits in the order
``ctx["orders"][table]`` and scattered back, so a block never sees the order, only the mixer does.

``MLP``: PyTorch-Geometric's ``MLP`` as HEPT configures it (``lins`` / ``norms`` ModuleLists, plain last
layer, LayerNorm over features before the activation, no dropout), so HEPT's checkpoint keys map 1:1.
"""

from __future__ import annotations

import torch
from torch import nn

from partx.nn.lsh import inverse_permutation
from partx.nn.mamba.mixer import BiMambaMixer, gather_tokens


class RMSNorm(nn.Module):
    """RMSNorm over the last dim (Mamba-2 / Lampa Mamba-a use it instead of LayerNorm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(kind: str, dim: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "rms":
        return RMSNorm(dim)
    raise ValueError(f"unknown norm {kind!r}; choose 'layer' or 'rms'")


class ResidualBlock(nn.Module):
    """Pre-norm residual block around any point-cloud mixer ``mixer(x, coords, mask, ctx)``.

    Args:
        dim: C.
        mixer: the token mixer.
        ff: add HEPT's feed-forward sub-block (Linear-ReLU-Linear, width C).
        norm: "layer" or "rms".
        dropout: on both residual branches (HEPT: 0.1).
    """

    def __init__(self, dim: int, mixer: nn.Module, ff: bool = True, norm: str = "layer", dropout: float = 0.1):
        super().__init__()
        self.norm1 = make_norm(norm, dim)
        self.mixer = mixer
        self.dropout = nn.Dropout(dropout)
        if ff:
            self.norm2 = make_norm(norm, dim)
            self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        else:
            self.norm2 = self.ff = None

    def forward(self, x: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor, ctx: dict) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.norm1(x), coords, mask, ctx))
        if self.ff is not None:
            x = x + self.dropout(self.ff(self.norm2(x)))
        return x


class OrderedMamba(nn.Module):
    """Bidirectional Mamba over the hits of each event in the order ``ctx["orders"][table]``.

    Args:
        dim: C.
        table: which of the encoder's orders this layer scans (OR over layers for Mamba-b).
        block: "mamba1" or "mamba2"; num_heads: Mamba-2 heads; d_state, expand: as mamba-ssm.
        bidirectional: False keeps only the forward scan (mamba-ssm's ``Mamba`` as Lampa uses it).
    """

    def __init__(self, dim: int, table: int = 0, block: str = "mamba1", num_heads: int = 4, d_state: int = 16, expand: int = 2, bidirectional: bool = True):
        super().__init__()
        self.table, self.bidirectional = table, bidirectional
        self.mamba = BiMambaMixer(dim, num_heads, d_state=d_state, expand=expand, block=block)
        if not bidirectional:
            del self.mamba.backward_block

    def forward(self, x: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor, ctx: dict) -> torch.Tensor:
        orders = ctx["orders"]
        perm = orders[self.table % len(orders)]
        xs, ms = gather_tokens(x, perm), mask.gather(1, perm)  # real hits first
        if self.bidirectional:
            ys = self.mamba(xs, ms)
        else:
            ys = self.mamba.forward_block(xs * ms[..., None].to(xs.dtype)) * ms[..., None].to(xs.dtype)
        return gather_tokens(ys, inverse_permutation(perm))


class MLP(nn.Module):
    """PyG-style MLP: (Linear -> LayerNorm -> act) x (num_layers - 1), then a plain Linear."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int = 5, act: str = "tanh"):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_layers - 1))
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
        if act not in acts:
            raise ValueError(f"unknown activation {act!r}; choose one of {sorted(acts)}")
        self.act = acts[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin, norm in zip(self.lins[:-1], self.norms):
            x = self.act(norm(lin(x)))
        return self.lins[-1](x)
