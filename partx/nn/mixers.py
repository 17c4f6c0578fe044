"""Registry of particle-block token mixers: one name -> one module class, imported lazily.

Every mixer obeys one batch-first interface::

    mixer = build_mixer(name, embed_dim=C, num_heads=H, dropout=p, max_len=N_max, **options)
    y = mixer(x, mask, bias)      # x (B, N, C); mask (B, N) bool, True = real particle;
                                  # bias (B, H, N, N) float or None  ->  y (B, N, C)

A mixer class declares what it takes, by its constructor signature (``embed_dim``, ``num_heads``,
``dropout`` always; no ``**kwargs`` sink: an unknown option raises ``TypeError`` naming it and the valid
ones, see ``partx.nn.options``) and by class attributes the ParT skeleton and the model registry read:

  * ``uses_bias``: whether U is consumed; if False the skeleton skips computing it;
  * ``pair_mode`` (default "dense"): "local" = the mixer attends over a sparse pair set and takes, instead
    of the dense U, ``LocalPairs(index (B, N, k), bias (B, H, N, k) | None)``; the skeleton asks the mixer's
    ``neighbours(v, mask)`` for the index and evaluates U only there (partx/nn/local_attention.py);
  * ``needs_max_len``: the constructor takes ``max_len`` (a fixed-length parameterisation); ``build_mixer``
    passes it only then;
  * ``attention_options``: which of weaver's ``Attention`` keywords (``bias``, ``use_qk_norm``,
    ``norm_layer``, output gates) it implements; the skeleton passes the ParT block's values for those and
    raises for a non-default value of any other (e.g. qk-norm in a Mamba mixer);
  * ``weaver_init``: True if the skeleton may initialise it as weaver's ParT initialises its attention
    (``weight_init``, ``fix_init`` depth rescaling of ``out_proj``); False if it keeps its own
    initialisation untouched (Mamba).

and these semantics (tests/test_mixers.py checks each registered mixer):
  * padded particles never change the outputs of real particles (pad more, same result);
  * jets of a batch never see each other (perturb jet 1, jet 0 unchanged);
  * real particles come first in the sequence, padding after (the ParT skeleton guarantees this,
    also after it re-orders particles for order-sensitive mixers; a global token, if any, comes first).

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
    "local": ("partx.nn.local_attention", "LocalAttentionMixer", {}),
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


def needs_max_len(name: str) -> bool:
    """Whether mixer ``name`` has a fixed-length parameterisation (its constructor takes ``max_len``)."""
    return getattr(mixer_class(name), "needs_max_len", False)


def build_mixer(name: str, embed_dim: int, num_heads: int, dropout: float = 0.0, max_len: int = 128, **options) -> nn.Module:
    """Instantiate a registered mixer. ``max_len`` reaches only mixers that declare ``needs_max_len``;
    ``options`` are mixer-specific (e.g. ``k`` for Linformer); an unknown one raises ``TypeError``."""
    cls = mixer_class(name)
    fixed = _REGISTRY[name][2]
    clash = sorted(set(fixed) & set(options))
    if clash:
        raise ValueError(f"mixer {name!r} fixes {', '.join(clash)}; choose another mixer name instead of setting it")
    if needs_max_len(name):
        options = dict(options, max_len=max_len)
    return cls(embed_dim=embed_dim, num_heads=num_heads, dropout=dropout, **fixed, **options)
