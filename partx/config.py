"""Global run-time switches (timm-style): one place to turn fused kernels on or off.

Every fused path in partx checks these before it runs, and falls back to its pure-PyTorch
reference otherwise. Set them from the environment (``PARTX_FUSED_ATTN=0``) or in code
(``partx.config.set_fused_attn(False)``); nothing else needs editing.
"""

from __future__ import annotations

import os

import torch


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


_FUSED_ATTN = _env_flag("PARTX_FUSED_ATTN", True)
_MAMBA_BACKEND = os.environ.get("PARTX_MAMBA_BACKEND", "auto")
_MAMBA_COMPILE = _env_flag("PARTX_MAMBA_COMPILE", False)


def use_fused_attn() -> bool:
    """True when attention should go through SDPA / FlexAttention rather than the explicit-softmax reference."""
    return _FUSED_ATTN


def set_fused_attn(enable: bool) -> None:
    global _FUSED_ATTN
    _FUSED_ATTN = bool(enable)


def mamba_backend() -> str:
    """'auto' (mamba-ssm kernels on CUDA if importable, else the CPU chunked scan), or a backend name."""
    return _MAMBA_BACKEND


def set_mamba_backend(name: str) -> None:
    global _MAMBA_BACKEND
    _MAMBA_BACKEND = name


def mamba_compile() -> bool:
    """True: the chunked Mamba-1 scan builds its per-block terms with ``torch.compile`` (off by default: the
    first call compiles for minutes on a small CPU; docs/mamba.md, "torch.compile")."""
    return _MAMBA_COMPILE


def set_mamba_compile(enable: bool) -> None:
    global _MAMBA_COMPILE
    _MAMBA_COMPILE = bool(enable)


def cuda_available() -> bool:
    return torch.cuda.is_available()
