"""Particle Flow Network (Komiske, Metodiev, Thaler, arXiv:1810.05165): a Deep Sets jet tagger.

Each particle goes through the same per-particle network Phi, the results are summed over the real
particles of the jet (permutation invariant), and F maps the sum to class scores. Phi is a stack of
1x1 convolutions so the (B, F, N) weaver layout needs no transpose.
"""

from __future__ import annotations

import torch
from torch import nn

from partx.nn.options import strict_options


class ParticleFlowNetwork(nn.Module):
    """Args:
        input_dims: particle features F.
        num_classes: output classes.
        phi_sizes: widths of the per-particle network.
        f_sizes: widths of the jet-level network.
        use_bn: batch-normalise the inputs and each Phi layer.
        for_inference: apply softmax to the output.
        use_amp, compile_model: set by weaver's ``--use-amp`` / ``--compile-model``; nothing to do here
            (autocast and compilation are weaver's).
    Unknown options raise ``TypeError`` naming them (``partx.nn.options``).
    """

    @strict_options
    def __init__(
        self,
        input_dims: int,
        num_classes: int,
        phi_sizes: tuple[int, ...] = (100, 100, 256),
        f_sizes: tuple[int, ...] = (100, 100, 100),
        use_bn: bool = True,
        for_inference: bool = False,
        use_amp: bool = False,
        compile_model: bool = False,
    ):
        super().__init__()
        self.input_bn = nn.BatchNorm1d(input_dims) if use_bn else nn.Identity()
        phi: list[nn.Module] = []
        for i, width in enumerate(phi_sizes):
            phi += [nn.Conv1d(input_dims if i == 0 else phi_sizes[i - 1], width, kernel_size=1)]
            phi += [nn.BatchNorm1d(width)] if use_bn else []
            phi += [nn.ReLU()]
        self.phi = nn.Sequential(*phi)
        f: list[nn.Module] = []
        for i, width in enumerate(f_sizes):
            f += [nn.Linear(phi_sizes[-1] if i == 0 else f_sizes[i - 1], width), nn.ReLU()]
        f += [nn.Linear(f_sizes[-1], num_classes)]
        self.f = nn.Sequential(*f)
        self.for_inference = for_inference

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """features (B, F, N), mask (B, 1, N) real=1 -> (B, num_classes)."""
        if mask is None:
            mask = torch.ones_like(features[:, :1])
        mask = mask.bool().float()
        x = self.phi(self.input_bn(features * mask)) * mask  # padded particles contribute nothing
        out = self.f(x.sum(dim=-1))
        return torch.softmax(out, dim=1) if self.for_inference else out
