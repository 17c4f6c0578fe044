"""partx.losses.focal: Lin et al.'s binary focal loss on the scored particles (hand-computed values)."""

import math

import pytest
import torch
import torch.nn.functional as F

from partx.losses.focal import FocalLoss, binary_focal_loss


def test_gamma_zero_is_alpha_weighted_bce():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(50, generator=g), (torch.rand(50, generator=g) > 0.7).float()
    alpha_t = 0.25 * y + 0.75 * (1 - y)
    expected = F.binary_cross_entropy_with_logits(logits, y, weight=alpha_t)
    assert torch.allclose(binary_focal_loss(logits, y, gamma=0.0, alpha=0.25), expected, atol=1e-7)
    # alpha = 0.5, gamma = 0: half the plain cross-entropy
    assert torch.allclose(binary_focal_loss(logits, y, gamma=0.0, alpha=0.5), 0.5 * F.binary_cross_entropy_with_logits(logits, y), atol=1e-7)


def test_published_value_and_easy_examples_down_weighted():
    p = torch.tensor([0.9, 0.1])  # an easy and a hard positive
    logits, y = torch.log(p / (1 - p)), torch.ones(2)
    fl = torch.stack([binary_focal_loss(logits[i:i + 1], y[i:i + 1]) for i in range(2)])
    ce = -torch.log(p)
    # FL(p_t) = -alpha_t (1 - p_t)^gamma log p_t, Lin et al. eq. 5, gamma 2, alpha 0.25 (hand-computed)
    assert fl[0].item() == pytest.approx(0.25 * 0.1**2 * -math.log(0.9), rel=1e-5)
    assert fl[1].item() == pytest.approx(0.25 * 0.9**2 * -math.log(0.1), rel=1e-5)
    ratio = fl / (0.25 * ce)  # = (1 - p_t)^2: the easy example keeps 1% of its loss, the hard one 81%
    assert ratio[0].item() == pytest.approx(0.01, rel=1e-4) and ratio[1].item() == pytest.approx(0.81, rel=1e-4)


def test_only_scored_particles_count_and_hept_alpha():
    logits = torch.tensor([[2.0, -1.0, 30.0], [0.5, -30.0, 0.0]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    scored = torch.tensor([[True, True, False], [True, False, False]])
    full = binary_focal_loss(logits, y, scored)
    assert torch.allclose(full, binary_focal_loss(logits[scored], y[scored]))
    assert torch.isfinite(full) and full < 1.0  # the absurd unscored entries (logit 30 for a 0) are ignored
    # HEPT's variant: the same alpha for both classes -> for negatives alpha / (1 - alpha) = 1/3 of Lin's
    neg = torch.tensor([0.3]), torch.zeros(1)
    assert binary_focal_loss(*neg, alpha_mode="hept").item() == pytest.approx(binary_focal_loss(*neg).item() / 3, rel=1e-6)
    empty = binary_focal_loss(logits.requires_grad_(), y, torch.zeros_like(scored))
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="alpha_mode"):
        FocalLoss(alpha_mode="other")
    assert torch.allclose(FocalLoss()(logits, y, scored), full)
