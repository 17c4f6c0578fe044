"""Pileup-mitigation classifiers: the tracking encoders (``partx.models.tracking``) with HEPT's pileup input and head.

``PileupClassifier(cfg)(features (B, N, F), pid_class (B, N), coords (B, N, D), mask (B, N)) -> logits (B, N)``:
one logit per particle (from the leading vertex = 1), zero on padding. What the pileup task adds around the
unchanged ``TrackingEncoder``, as HEPT's ``Transformer`` does with ``task == "pileup"``
(Graph-COM/HEPT ``src/models/baselines/transformer.py``; Lampa's ``GNNStack`` does the same):

  * the discrete ``pid_class`` (charged 0, photon 1, K0L 2, K0S 3, n 4, Lambda 5, Xi0 6) goes through an
    ``nn.Embedding(7, 10)`` concatenated to the continuous features (HEPT: ``in_dim - 1 + 10``);
  * ``out_proj = Linear(h_dim // 2, 1)`` after the encoder's head. HEPT applies a sigmoid and its focal loss
    takes probabilities; partx returns the logit and the loss works on logits (``partx.losses.focal``:
    numerically stable ``log sigmoid``), the same model up to that last, parameter-free step.

Sizes (``pileup_config``): the seed paper's pileup configurations (AISTATS 2025, App. A.2: "24, 8 for
Mamba-a, 48, 8 for Mamba-b") and HEPT's ``src/configs/pileup/pileup_trans_hept.yaml`` (h 24, 4 layers,
8 heads, block 100, 3 hashes, 140 regions); pure Mamba has no published pileup size and takes Mamba-b's
(48 x 8), as the tracking sizes do. Coordinates are HEPT's ``PileupTransform`` ones, (eta, phi, eta, phi).
"""

from __future__ import annotations

import torch
from torch import nn

from partx.models.tracking.configs import SIZES, tracking_config
from partx.models.tracking.encoder import TrackingConfig, TrackingEncoder

N_PID_CLASSES = 7  # HEPT's pid_class values 0..6
PID_EMBED_DIM = 10
PILEUP_SIZE = "pileup"  # the default size: the paper's pileup configuration

#: (h_dim, n_layers, head_hidden) of the paper's / HEPT's pileup configurations
_PILEUP_SHAPES = {"hept": (24, 4, 256), "mamba": (48, 8, 256), "mamba_a": (24, 8, 256), "mamba_b": (48, 8, 256)}
#: HEPT's pileup LSH settings (pileup_trans_hept.yaml), used by HEPT and by Mamba-a's attention block
_PILEUP_LSH = dict(block_size=100, n_hashes=3, num_regions=140.0, num_heads=8)


def pileup_config(model: str, size: str = PILEUP_SIZE, n_features: int = 7, coords_dim: int = 4, **overrides) -> TrackingConfig:
    """Encoder config of ``model`` ("hept", "mamba", "mamba_a", "mamba_b") for pileup.

    Args:
        size: "pileup" (the paper's pileup sizes, default) or a tracking size "S" / "M" / "L".
        n_features: continuous features per particle (HEPT's x without pid_class: 7); the encoder's
            input is these plus the pid embedding.
        coords_dim: LSH coordinates (HEPT: 4).
        overrides: any ``TrackingConfig`` field.
    """
    if size != PILEUP_SIZE and size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of: {PILEUP_SIZE}, {', '.join(SIZES)}")
    kw: dict = dict(_PILEUP_LSH)
    if size == PILEUP_SIZE:
        if model not in _PILEUP_SHAPES:
            raise ValueError(f"unknown pileup model {model!r}; choose one of: {', '.join(_PILEUP_SHAPES)}")
        h, layers, hidden = _PILEUP_SHAPES[model]
        kw.update(h_dim=h, n_layers=layers, head_hidden=hidden)
    kw.update(overrides)
    return tracking_config(model, "S" if size == PILEUP_SIZE else size, in_dim=n_features + PID_EMBED_DIM,
                           coords_dim=coords_dim, **kw)


class PileupClassifier(nn.Module):
    """pid embedding -> ``TrackingEncoder`` -> ``Linear(E, 1)`` per particle (see module doc)."""

    def __init__(self, cfg: TrackingConfig):
        super().__init__()
        if cfg.in_dim <= PID_EMBED_DIM:
            raise ValueError(f"in_dim {cfg.in_dim} must count the {PID_EMBED_DIM} pid-embedding dims plus the features")
        self.cfg = cfg
        self.pid_embed = nn.Embedding(N_PID_CLASSES, PID_EMBED_DIM)
        self.encoder = TrackingEncoder(cfg)
        self.out_proj = nn.Linear(cfg.embed_dim, 1)

    def forward(self, features: torch.Tensor, pid_class: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features (B, N, F), pid_class (B, N) (float or int, values 0..6), coords (B, N, D), mask (B, N) bool
        -> logits (B, N), 0 on padding."""
        # padding may carry any value: clamp before the lookup (the encoder zeroes padded rows anyway)
        pid = torch.where(mask, pid_class.round().long(), 0).clamp(0, N_PID_CLASSES - 1)
        x = torch.cat([features, self.pid_embed(pid).to(features.dtype)], dim=-1)
        h = self.encoder(x, coords, mask)
        return self.out_proj(h).squeeze(-1) * mask.to(h.dtype)


def build_pileup_model(model: str, size: str = PILEUP_SIZE, **overrides) -> PileupClassifier:
    """``PileupClassifier(pileup_config(model, size, **overrides))``."""
    return PileupClassifier(pileup_config(model, size, **overrides))
