"""Registry of particle-block token mixers: one name -> one module class, imported lazily.

Every mixer obeys one batch-first interface::

    mixer = build_mixer(name, embed_dim=C, num_heads=H, dropout=p, max_len=N_max, **options)
    y = mixer(x, mask, bias)      # x (B, N, C); mask (B, N) bool, True = real particle;
                                  # bias (B, H, N, N) float or None  ->  y (B, N, C)

and these semantics (tests/test_mixers.py checks each registered mixer):
  * padded particles never change the outputs of real particles (pad more, same result);
  * jets of a batch never see each other (perturb jet 1, jet 0 unchanged);
  * real particles come first in the sequence, padding after (the ParT skeleton guarantees this,
    also after it re-orders particles for order-sensitive mixers);
  * ``mixer.uses_bias`` says whether U is consumed; if False the skeleton skips computing it.

Imports are lazy so that a mixer whose optional package is missing fails only when it is asked for.
"""

from __future__ import annotations

import importlib

from torch import nn

# name -> (module, class, fixed keyword arguments)
_REGISTRY: dict[str, tuple[str, str, dict]] = {
    "sdpa": ("partx.nn.attention", "AttentionMixer", {"backend": "sdpa"}),
    "math": ("partx.nn.attention", "AttentionMixer", {"backend": "math"}),
    "attention": ("partx.nn.attention", "AttentionMixer", {}),
    "mamba": ("partx.nn.mamba.mixer", "BiMambaMixer", {"block": "mamba1"}),
    "mamba2": ("partx.nn.mamba.mixer", "BiMambaMixer", {"block": "mamba2"}),
    "linformer": ("partx.nn.linformer", "LinformerMixer", {}),
    "reformer": ("partx.nn.reformer", "ReformerMixer", {}),
    "flex": ("partx.nn.flex_attention", "FlexAttentionMixer", {}),
}


def register_mixer(name: str, module: str, cls: str, **fixed: object) -> None:
    """Add a mixer under ``name`` (module path and class name, imported on first use)."""
    _REGISTRY[name] = (module, cls, dict(fixed))


def available_mixers() -> list[str]:
    return sorted(_REGISTRY)


def mixer_class(name: str) -> type[nn.Module]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown mixer {name!r}; choose one of: {', '.join(available_mixers())}")
    module, cls, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def build_mixer(name: str, embed_dim: int, num_heads: int, dropout: float = 0.0, max_len: int = 128, **options) -> nn.Module:
    """Instantiate a registered mixer. ``options`` are mixer-specific (e.g. ``k`` for Linformer)."""
    cls = mixer_class(name)
    fixed = _REGISTRY[name][2]
    return cls(embed_dim=embed_dim, num_heads=num_heads, dropout=dropout, max_len=max_len, **fixed, **options)
