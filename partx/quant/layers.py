"""Which layers a quantizer may replace, and size helpers shared by every method.

A Linear whose parent reads its ``.weight`` directly instead of calling it cannot be swapped for a
packed int8 module; partx modules declare such children (``functional_linears`` class attribute), and
third-party classes are listed in ``THIRD_PARTY_FUNCTIONAL_LINEARS`` (checked against the installed
version by tests/test_quant.py).
"""

from __future__ import annotations

import io

from torch import nn

__all__ = ["functional_linears", "quantizable_linears", "model_size_bytes", "linear_weight_bytes",
           "THIRD_PARTY_FUNCTIONAL_LINEARS"]

#: ``module.Class`` -> child Linears its forward reads as ``.weight``. weaver-core's ParT ``Attention``
#: passes ``in_proj.weight`` to ``F._in_projection_packed``.
THIRD_PARTY_FUNCTIONAL_LINEARS: dict[str, tuple[str, ...]] = {
    "weaver.nn.model.ParticleTransformer.Attention": ("in_proj",),
}


def functional_linears(module: nn.Module) -> tuple[str, ...]:
    """Names of ``module``'s child Linears whose weight its forward reads directly instead of calling them."""
    declared = getattr(type(module), "functional_linears", None)
    if declared is not None:
        return tuple(declared)
    return THIRD_PARTY_FUNCTIONAL_LINEARS.get(f"{type(module).__module__}.{type(module).__qualname__}", ())


def quantizable_linears(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` modules (exact type, as torch does) called as modules by their parent."""
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
    import torch

    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def linear_weight_bytes(model: nn.Module) -> int:
    """Serialized bytes of the Linear layers only (fp32 ``nn.Linear`` or a quantized Linear)."""
    import torch

    total = 0
    for mod in model.modules():
        is_qlinear = type(mod).__name__ == "Linear" and "quantized" in type(mod).__module__
        if isinstance(mod, nn.Linear) or is_qlinear:
            buf = io.BytesIO()
            torch.save(mod.state_dict(), buf)
            total += buf.getbuffer().nbytes
    return total
