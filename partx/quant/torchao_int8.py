"""torchao int8 on CUDA (optional extra ``partx[torchao]``): int8 dynamic activations x int8 weights.

torchao replaces ``torch.ao.quantization``; its int8 kernels pay off on CUDA (Triton / cuBLASLt int8
GEMMs), while on the CPUs here its int8 configurations were slower than fp32 (docs/quantization.md),
so this path is CUDA-only. It raises ``QuantUnavailable`` (the caller skips the method and says why) on
CPU or when torchao is not installed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from partx.quant.layers import quantizable_linears

__all__ = ["QuantUnavailable", "quantize_torchao", "torchao_available"]


class QuantUnavailable(RuntimeError):
    """The method cannot run here (no CUDA, optional package missing): skip it, the reason is the message."""


def torchao_available() -> bool:
    try:
        import torchao  # noqa: F401
    except ImportError:
        return False
    return True


def quantize_torchao(model: nn.Module, device: str | torch.device = "cuda") -> nn.Module:
    """A copy of ``model`` on ``device`` whose quantizable Linears are torchao int8-dynamic-activation/int8-weight."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        raise QuantUnavailable("torchao int8 runs on CUDA only (no CUDA device here)")
    if not torchao_available():
        raise QuantUnavailable("torchao is not installed (optional extra: pip install 'partx[torchao]')")
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    model = copy.deepcopy(model).to(device).eval()
    names = set(quantizable_linears(model))
    quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda m, fqn: fqn in names)
    return model
