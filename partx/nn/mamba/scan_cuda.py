"""mamba-ssm's fused CUDA scans behind a guarded import: used only when CUDA and mamba-ssm are present.

mamba-ssm cannot even be imported without its compiled CUDA extension (docs/mamba.md), so every import is
wrapped and ``available()`` says whether the fused path can run. The wrappers take exactly the
arguments of ``scan_ref`` so the backends are interchangeable and a test can compare them.
"""

from __future__ import annotations

import torch

try:  # Mamba-1 kernel
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _selective_scan_fn
except Exception:  # ImportError, or the extension failing to load: both mean "not here"
    _selective_scan_fn = None

try:  # Mamba-2 (SSD) Triton kernel
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined as _chunk_scan_combined
except Exception:
    _chunk_scan_combined = None


def available(kind: str = "mamba1") -> bool:
    """True when the fused kernel for ``kind`` ("mamba1" or "mamba2") is importable and CUDA is up."""
    fn = _selective_scan_fn if kind == "mamba1" else _chunk_scan_combined
    return fn is not None and torch.cuda.is_available()


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """mamba-ssm ``selective_scan_fn``; arguments and shapes as ``scan_ref.selective_scan_ref``."""
    if not available("mamba1"):
        raise RuntimeError("mamba backend 'cuda' needs CUDA and an importable mamba_ssm")
    return _selective_scan_fn(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                              return_last_state=return_last_state)


def ssd_scan_cuda(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, return_final_states=False, chunk_size=256):
    """mamba-ssm ``mamba_chunk_scan_combined``; arguments and shapes as ``scan_ref.ssd_scan_ref``."""
    if not available("mamba2"):
        raise RuntimeError("mamba backend 'cuda' needs CUDA and an importable mamba_ssm")
    return _chunk_scan_combined(x, dt, A, B, C, chunk_size, D=D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus,
                                return_final_states=return_final_states)
