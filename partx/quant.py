"""int8 post-training quantization: the one partx entry point (``quantize_int8``) and a size helper.

What it does: *dynamic* int8 quantization of the ``nn.Linear`` layers (all those that are called as
modules; see ``quantizable_linears``) (weights stored as int8 with one
scale per tensor, torch's default dynamic qconfig; activations quantized on the fly per batch), via ``torch.ao.quantization.quantize_dynamic``. Everything else (LayerNorm, the pair
embedding's 1x1 convolutions, BatchNorm, attention's batched matmuls, Mamba scans) stays fp32.

Why this API although it is deprecated (torch >= 2.10 warns that ``torch.ao.quantization`` moves to
torchao): measured on the CPU machines here it is the int8 path that is actually *faster* on CPU
(~1.4x on a ParT-sized encoder, ~3.8x smaller), whereas torchao's int8 weight-only / dynamic
configurations were slower than fp32 on this CPU. It needs no calibration data and no model changes,
and the result still runs through weaver's wrappers and the ParT skeleton. The deprecation is contained
here: nothing else in partx imports ``torch.ao.quantization``, so swapping the backend (torchao, ONNX
Runtime's quantizer) means editing this file only.

Dynamic quantization is CPU-only (fbgemm / qnnpack kernels) and inference-only.
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from torch import nn

__all__ = ["quantize_int8", "quantizable_linears", "functional_linears", "model_size_bytes", "linear_weight_bytes"]


def quantize_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return a copy of ``model`` (eval mode) with every ``nn.Linear`` replaced by a dynamic int8 Linear.

    ``model`` is not modified unless ``inplace``. The returned model runs on CPU only.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model = model.cpu().eval()
    engines = torch.backends.quantized.supported_engines
    if torch.backends.quantized.engine not in engines or torch.backends.quantized.engine == "none":
        for eng in ("fbgemm", "x86", "qnnpack"):
            if eng in engines:
                torch.backends.quantized.engine = eng
                break
    names = quantizable_linears(model)
    with warnings.catch_warnings():
        # torch.ao.quantization deprecation notice: see the module docstring for why we use it anyway
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        from torch.ao.quantization import quantize_dynamic

        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(model, set(names), dtype=torch.qint8, inplace=True)


def functional_linears(module: nn.Module) -> tuple[str, ...]:
    """Names of ``module``'s child Linears whose weight its forward reads directly instead of calling them.

    Declared by the class attribute ``functional_linears`` (partx modules, e.g. ``MambaBlock``'s
    ``dt_proj``); for third-party classes that cannot declare it, by ``THIRD_PARTY_FUNCTIONAL_LINEARS``.
    """
    declared = getattr(type(module), "functional_linears", None)
    if declared is not None:
        return tuple(declared)
    return THIRD_PARTY_FUNCTIONAL_LINEARS.get(f"{type(module).__module__}.{type(module).__qualname__}", ())


#: ``module.Class`` -> child Linears its forward reads as ``.weight`` (checked against the installed
#: version by tests/test_quant.py). weaver-core's ParT ``Attention`` passes ``in_proj.weight`` to
#: ``F._in_projection_packed``.
THIRD_PARTY_FUNCTIONAL_LINEARS: dict[str, tuple[str, ...]] = {
    "weaver.nn.model.ParticleTransformer.Attention": ("in_proj",),
}


def quantizable_linears(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` modules that ``quantize_int8`` replaces.

    A Linear whose parent reads its ``.weight`` directly instead of calling it (``functional_linears``)
    cannot be swapped for a packed int8 module, so it stays fp32. Subclasses such as
    ``NonDynamicallyQuantizableLinear`` are skipped as well (exact type match, as torch does).
    """
    names = []
    for parent_name, parent in model.named_modules():
        skip = functional_linears(parent)
        for child_name, child in parent.named_children():
            if type(child) is nn.Linear and child_name not in skip:
                names.append(f"{parent_name}.{child_name}" if parent_name else child_name)
    return names


def model_size_bytes(model: nn.Module) -> int:
    """Size of ``torch.save(model.state_dict())`` in bytes (packed int8 weights count as stored)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def linear_weight_bytes(model: nn.Module) -> int:
    """Serialized bytes of the Linear layers only (fp32 ``nn.Linear`` or dynamic-quantized Linear).

    Serializes each Linear's own state_dict; this isolates what quantization changes from the
    fp32 parts (embeddings, norms, convolutions) that ``model_size_bytes`` also includes.
    """
    total = 0
    for mod in model.modules():
        is_qlinear = type(mod).__name__ == "Linear" and "quantized" in type(mod).__module__
        if isinstance(mod, nn.Linear) or is_qlinear:
            buf = io.BytesIO()
            torch.save(mod.state_dict(), buf)
            total += buf.getbuffer().nbytes
    return total
