"""Binary focal loss (Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", ICCV 2017,
arXiv:1708.02002, eq. 5), as the seed paper uses it for pileup (AISTATS 2025, eq. 3: gamma = 2, alpha = 0.25):

    FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t),
    p_t = p if y = 1 else 1 - p,   alpha_t = alpha if y = 1 else 1 - alpha      (Lin et al.: "alpha-balanced")

averaged over the scored particles only (HEPT's ``is_neu``: neutral, pT > 0.9 GeV). At gamma = 0 it is the
alpha-weighted binary cross-entropy; gamma > 0 shrinks the loss of well-classified particles (p_t -> 1).

``alpha_mode="hept"``: Graph-COM/HEPT ``src/utils/losses.py`` ``FocalLoss`` multiplies *every* particle by
the same alpha (``alpha * (1 - p_t)^gamma * BCE``), which only scales the loss (no class balancing); that
option reproduces it. partx computes from logits (``binary_cross_entropy_with_logits`` = -log p_t, stable),
HEPT from sigmoid probabilities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALPHA_MODES = ("lin", "hept")


def binary_focal_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, gamma: float = 2.0,
                      alpha: float = 0.25, alpha_mode: str = "lin") -> torch.Tensor:
    """Mean focal loss over the entries where ``mask`` is true.

    Args:
        logits: (...) raw scores (sigmoid gives p = P(y = 1)).
        target: (...) 0 / 1 labels (float or int).
        mask: (...) bool, the entries that count (scored particles); None = all.
        gamma: focusing parameter (0: alpha-weighted BCE).
        alpha: weight of the positive class ("lin") or of every entry ("hept"); None-like 1.0 = no weighting.
        alpha_mode: "lin" (alpha_t as Lin et al.) or "hept" (a constant alpha, HEPT's code).
    Returns:
        scalar; 0 (still attached to the graph) when no entry is selected.
    """
    if alpha_mode not in ALPHA_MODES:
        raise ValueError(f"alpha_mode must be one of {ALPHA_MODES}, not {alpha_mode!r}")
    y = target.to(logits.dtype)
    if mask is not None:
        logits, y = logits[mask], y[mask]
    if logits.numel() == 0:
        return logits.sum() * 0.0
    ce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")  # -log p_t
    p_t = torch.exp(-ce)
    weight = (1.0 - p_t).pow(gamma) if gamma != 0 else torch.ones_like(ce)
    alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y) if alpha_mode == "lin" else torch.full_like(ce, alpha)
    return (alpha_t * weight * ce).mean()


class FocalLoss(torch.nn.Module):
    """``binary_focal_loss`` as a module (what the pileup network file hands weaver as ``loss_func``):
    ``loss(logits (B, N), target (B, N), mask (B, N) bool) -> scalar``."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, alpha_mode: str = "lin"):
        super().__init__()
        if alpha_mode not in ALPHA_MODES:
            raise ValueError(f"alpha_mode must be one of {ALPHA_MODES}, not {alpha_mode!r}")
        self.gamma, self.alpha, self.alpha_mode = float(gamma), float(alpha), alpha_mode

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return binary_focal_loss(logits, target, mask, self.gamma, self.alpha, self.alpha_mode)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, alpha_mode={self.alpha_mode}"
