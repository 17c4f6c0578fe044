"""P-CNN: a 1D residual CNN over the pT-ordered particle list (the DeepAK8 particle CNN, arXiv:2004.08262).

Convolutions run along the particle axis, so the model sees neighbours in pT order; padded
particles are zeroed after every stage so they never leak into real positions through the kernel
beyond what zero padding would do. Global average pooling over real particles feeds an MLP head.
"""

from __future__ import annotations

import torch
from torch import nn

from partx.nn.options import strict_options


class ResidualUnit(nn.Module):
    """Two (conv k=3 -> BN -> ReLU) layers with a 1x1 projected shortcut when the width changes."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=pad, bias=False), nn.BatchNorm1d(out_ch), nn.ReLU(),
            nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad, bias=False), nn.BatchNorm1d(out_ch),
        )
        self.shortcut = nn.Identity() if in_ch == out_ch else nn.Sequential(nn.Conv1d(in_ch, out_ch, 1, bias=False), nn.BatchNorm1d(out_ch))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x)) * mask


class ParticleCNN(nn.Module):
    """Args:
        input_dims: particle features F.
        num_classes: output classes.
        conv_params: per stage, the widths of its residual units.
        fc_params: (width, dropout) of the hidden MLP layers.
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
        conv_params: tuple[tuple[int, ...], ...] = ((32,), (64, 64), (64, 64), (128, 128)),
        fc_params: tuple[tuple[int, float], ...] = ((512, 0.2),),
        for_inference: bool = False,
        use_amp: bool = False,
        compile_model: bool = False,
    ):
        super().__init__()
        self.input_bn = nn.BatchNorm1d(input_dims)
        self.stem = nn.Sequential(nn.Conv1d(input_dims, conv_params[0][0], 3, padding=1, bias=False), nn.BatchNorm1d(conv_params[0][0]), nn.ReLU())
        units, in_ch = [], conv_params[0][0]
        for stage in conv_params:
            for width in stage:
                units.append(ResidualUnit(in_ch, width))
                in_ch = width
        self.units = nn.ModuleList(units)
        head: list[nn.Module] = []
        for width, drop in fc_params:
            head += [nn.Linear(in_ch, width), nn.ReLU(), nn.Dropout(drop)]
            in_ch = width
        head.append(nn.Linear(in_ch, num_classes))
        self.head = nn.Sequential(*head)
        self.for_inference = for_inference

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """features (B, F, N) pT-ordered, mask (B, 1, N) real=1 -> (B, num_classes)."""
        if mask is None:
            mask = torch.ones_like(features[:, :1])
        mask = mask.bool().float()
        x = self.stem(self.input_bn(features * mask)) * mask
        for unit in self.units:
            x = unit(x, mask)
        pooled = x.sum(-1) / mask.sum(-1).clamp(min=1)
        out = self.head(pooled)
        return torch.softmax(out, dim=1) if self.for_inference else out
