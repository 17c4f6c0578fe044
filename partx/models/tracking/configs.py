"""S / M / L sizes of the tracking encoders, at the seed paper's parameter counts (Table 1).

Trainable parameters (frozen LSH projections and region counts are buffers), in_dim 15, coords_dim 6;
``tests/test_tracking_models.py`` pins these numbers:

    model     size  h_dim layers head_hidden  params     paper
    HEPT      S     24    4      256          326,436    0.33M   (= HEPT's public tracking-60k checkpoint)
    HEPT      M     48    4      256          613,896    0.61M
    HEPT      L     48    8      256          1,011,528  1.01M
    Mamba     S/M/L as Mamba-b (the paper: "roughly the same model complexity")   0.33/0.63/1.00M
    Mamba-a   S     32    4      128          167,984    0.17M
    Mamba-a   M     48    4      192          355,352    0.35M
    Mamba-a   L     48    6      256          510,504    0.50M
    Mamba-b   S     48    5      192          323,832    0.32M
    Mamba-b   M     48    10     256          610,968    0.61M
    Mamba-b   L     64    12     256          1,008,416  0.99M

HEPT sizes follow the paper's "embedding 24 or 48, 4/8 layers" with HEPT's head (hidden 256). The Mamba
sizes are partx's choice (Lampa's configs do not give the paper's counts: its Mamba-a head alone, hidden
256, has ~0.2M parameters, more than Mamba-a-S): width, depth and head width chosen to land within 3% of
the paper's counts. Mamba / Mamba-b: bidirectional Mamba-1 (d_state 16, expand 2), LayerNorm; Mamba-a:
bidirectional Mamba-2 (4 SSD heads, d_state 16), RMSNorm, HEPT attention (8 heads, 3 tables, block 100)
shared by the middle layer(s).
"""

from __future__ import annotations

from partx.models.tracking.encoder import TrackingConfig, TrackingEncoder

SIZES = ("S", "M", "L")

_SHAPES = {
    "hept": {"S": (24, 4, 256), "M": (48, 4, 256), "L": (48, 8, 256)},
    "mamba": {"S": (48, 5, 192), "M": (48, 10, 256), "L": (64, 12, 256)},
    "mamba_a": {"S": (32, 4, 128), "M": (48, 4, 192), "L": (48, 6, 256)},
    "mamba_b": {"S": (48, 5, 192), "M": (48, 10, 256), "L": (64, 12, 256)},
}

_FAMILY = {
    "hept": dict(head_act="tanh"),
    "mamba": dict(head_act="relu", mamba_block="mamba1", norm="layer"),
    "mamba_a": dict(head_act="relu", mamba_block="mamba2", norm="rms", attn_layers="middle"),
    "mamba_b": dict(head_act="relu", mamba_block="mamba1", norm="layer", ordering="or_and"),
}


def tracking_config(model: str, size: str = "S", **overrides) -> TrackingConfig:
    """Config of ``model`` ("hept", "mamba", "mamba_a", "mamba_b") at ``size`` ("S", "M", "L"); keyword
    overrides win (e.g. ``ordering="lampa"``, ``in_dim=...``, ``block_size=...``)."""
    if model not in _SHAPES:
        raise ValueError(f"unknown tracking model {model!r}; choose one of: {', '.join(_SHAPES)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)}")
    h, layers, hidden = _SHAPES[model][size]
    kw = dict(_FAMILY[model], model=model, h_dim=h, n_layers=layers, head_hidden=hidden)
    kw.update(overrides)
    return TrackingConfig(**kw)


def build_tracking_model(model: str, size: str = "S", **overrides) -> TrackingEncoder:
    """``TrackingEncoder(tracking_config(model, size, **overrides))``."""
    return TrackingEncoder(tracking_config(model, size, **overrides))
