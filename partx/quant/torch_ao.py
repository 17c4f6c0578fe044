"""The two int8 paths through ``torch.ao.quantization`` (dynamic and static, eager mode, CPU kernels).

This is the only module of partx that imports ``torch.ao.quantization``. torch >= 2.10 warns that the API
is deprecated in favour of torchao; it still works in torch 2.13 and its dynamic path is the torch int8
path that is actually faster on the CPUs here (fbgemm/x86 VNNI kernels, see docs/quantization.md),
whereas torchao's CPU int8 configurations were slower than fp32. The deprecation warnings are filtered
here, and here only, so swapping the backend means editing this file.

* ``dynamic``: every quantizable ``nn.Linear`` (``partx.quant.layers.quantizable_linears``) becomes a
  dynamic int8 Linear: int8 weights (per-tensor scale, torch's default dynamic qconfig), activations
  quantized on the fly per call from their observed range.
* ``static``: every quantizable Linear is wrapped as quant -> int8 Linear -> dequant with activation
  scales fixed from calibration batches (torch's default x86 static qconfig: histogram observer on
  activations, per-channel symmetric weights). Everything between the Linears (LayerNorm, softmax,
  GELU, residual adds, attention's batched matmuls, the pair embedding's convolutions) stays fp32, so
  each Linear pays a quantize/dequantize pair: whether this beats ``dynamic`` is measured, not assumed.

Both are CPU-only and inference-only.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from partx.quant.layers import quantizable_linears

__all__ = ["quantize_int8", "quantize_static_int8", "select_engine"]


@contextlib.contextmanager
def _quiet_ao():
    with warnings.catch_warnings():
        # torch.ao.quantization deprecation notices: see the module docstring for why it is used anyway
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        yield


def select_engine() -> str:
    """Choose a quantized CPU engine (x86 > fbgemm > qnnpack) if none usable is set; returns it."""
    engines = torch.backends.quantized.supported_engines
    if torch.backends.quantized.engine not in engines or torch.backends.quantized.engine == "none":
        for eng in ("x86", "fbgemm", "qnnpack"):
            if eng in engines:
                torch.backends.quantized.engine = eng
                break
    return torch.backends.quantized.engine


def quantize_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """A copy of ``model`` (eval, CPU) with every quantizable ``nn.Linear`` replaced by a dynamic int8 Linear."""
    if not inplace:
        model = copy.deepcopy(model)
    model = model.cpu().eval()
    select_engine()
    names = quantizable_linears(model)
    with _quiet_ao():
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, set(names), dtype=torch.qint8, inplace=True)


class _StaticLinear(nn.Module):
    """quant -> Linear -> dequant: one statically quantized Linear inside an fp32 model."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant, self.linear, self.dequant = QuantStub(), linear, DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.linear(self.quant(x)))


def quantize_static_int8(model: nn.Module, calib: Iterable[tuple[torch.Tensor, ...]], max_batches: int = 8) -> nn.Module:
    """A copy of ``model`` whose quantizable Linears are static int8, activation scales calibrated on ``calib``.

    Args:
        calib: batches of forward arguments (tuples of CPU tensors); the first ``max_batches`` are used.
    """
    model = copy.deepcopy(model).cpu().eval()
    engine = select_engine()
    names = quantizable_linears(model)
    with _quiet_ao():
        from torch.ao.quantization import convert, get_default_qconfig, prepare

        qconfig = get_default_qconfig(engine)
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            wrapped = _StaticLinear(getattr(parent, child))
            wrapped.qconfig = qconfig
            setattr(parent, child, wrapped)
        prepare(model, inplace=True)
        n = 0
        with torch.no_grad():
            for args in calib:
                model(*args)
                n += 1
                if n >= max_batches:
                    break
        if n == 0:
            raise ValueError("static quantization needs at least one calibration batch")
        convert(model, inplace=True)
    return model
