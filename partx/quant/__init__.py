"""Quantized inference: one interface, ``quantize(model, method, calib_loader=None) -> QuantResult``.

Methods (``METHODS``; docs/quantization.md has the measured accuracy / speed / size of each):

* ``dynamic``: torch dynamic int8 Linear layers (``partx.quant.torch_ao``; CPU);
* ``static``: torch static int8 Linear layers, activation scales calibrated on ``calib_loader`` (CPU);
* ``onnx``: the fp32 ONNX export run by ONNX Runtime (the deployment baseline, not quantized);
* ``onnx-int8``: ONNX Runtime static int8 in QDQ format, calibrated on ``calib_loader``;
* ``onnx-int8-conv``: ``onnx-int8`` plus the pair embedding's 1x1 convolutions (the (N, N) pair MLP);
* ``onnx-int8-dynamic``: ONNX Runtime dynamic int8 (weights int8, activation ranges per call);
* ``torchao``: torchao int8 dynamic-activation / int8-weight Linear layers (CUDA only; optional extra).

In every method only the Linear layers (weight products) become int8: attention softmax, LayerNorm,
GELU, the pair embedding's convolutions and attention's activation x activation products stay float
(they are cheap here and the softmax / norm statistics are where int8 loses accuracy first). The
report names every quantized layer and what stayed float.

``calib_loader``: an iterable of batches of forward arguments, each a tuple of CPU tensors in the
model's input order (e.g. ``(pf_points, pf_features, pf_vectors, pf_mask)`` for the JetClass models).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from partx.quant.layers import (THIRD_PARTY_FUNCTIONAL_LINEARS, functional_linears, linear_weight_bytes,
                                model_size_bytes, quantizable_linears)
from partx.quant.torch_ao import quantize_int8, quantize_static_int8
from partx.quant.torchao_int8 import QuantUnavailable

__all__ = ["quantize", "QuantResult", "QuantReport", "METHODS", "QuantUnavailable", "quantize_int8",
           "quantize_static_int8", "quantizable_linears", "functional_linears", "model_size_bytes",
           "linear_weight_bytes", "THIRD_PARTY_FUNCTIONAL_LINEARS"]

METHODS = ("dynamic", "static", "onnx", "onnx-int8", "onnx-int8-conv", "onnx-int8-dynamic", "torchao")
_NEEDS_CALIB = ("static", "onnx", "onnx-int8", "onnx-int8-conv", "onnx-int8-dynamic")  # ONNX export traces a real batch


@dataclass
class QuantReport:
    method: str
    quantized: list[str]  # layers (module names, or ONNX node names) that run in int8
    kept_float: list[str]  # Linear / weight-product layers left in float, and why (one entry each)
    size_bytes: int  # serialized model: state_dict bytes (torch) or .onnx file bytes
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.method}: {len(self.quantized)} layers int8, {len(self.kept_float)} matmul layers kept float, "
                f"{self.size_bytes / 1e6:.2f} MB")


@dataclass
class QuantResult:
    model: nn.Module  # call it like the original: model(*args) -> output (CPU unless report.device says)
    report: QuantReport


def _float_linears(model: nn.Module, quantized: Sequence[str]) -> list[str]:
    done = set(quantized)
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and name not in done:
            out.append(f"{name} (read as .weight by its parent)" if type(mod) is nn.Linear
                       else f"{name} ({type(mod).__name__})")
    return out


def _first_batch(calib_loader) -> tuple[torch.Tensor, ...]:
    for batch in calib_loader:
        return tuple(batch)
    raise ValueError("calib_loader yielded no batch")


def quantize(model: nn.Module, method: str, calib_loader: Iterable[Sequence[torch.Tensor]] | None = None, *,
             input_names: Sequence[str] | None = None, dynamic_length: bool = True,
             workdir: str | os.PathLike | None = None, calib_batches: int = 8,
             device: str = "cuda") -> QuantResult:
    """Quantize ``model`` (not modified) with ``method``; see the module docstring.

    Args:
        calib_loader: batches of forward arguments; required by static / ONNX methods.
        input_names: ONNX input names (the data config's, e.g. pf_points...); default input_0...
        dynamic_length: ONNX particle axis (axis 2) dynamic; False for models traced at a fixed length (Mamba).
        workdir: keep the .onnx files here (default: a temporary folder, removed once loaded).
        calib_batches: calibration batches used at most.
        device: torchao's device (CUDA).
    Raises ValueError (unknown method, missing calibration data) or QuantUnavailable (cannot run here).
    """
    if method not in METHODS:
        raise ValueError(f"unknown quantization method {method!r}; choose from {', '.join(METHODS)}")
    if method in _NEEDS_CALIB and calib_loader is None:
        raise ValueError(f"method {method!r} needs calib_loader (batches of forward arguments)")
    names = quantizable_linears(model)
    if method == "dynamic":
        q = quantize_int8(model)
        return QuantResult(q, QuantReport(method, names, _float_linears(model, names), model_size_bytes(q),
                                          notes=["torch.ao dynamic int8 (deprecated API, partx.quant.torch_ao)"]))
    if method == "static":
        q = quantize_static_int8(model, calib_loader, max_batches=calib_batches)
        return QuantResult(q, QuantReport(method, names, _float_linears(model, names), model_size_bytes(q),
                                          notes=["torch.ao static int8, x86 qconfig, quant/dequant around each Linear"]))
    if method == "torchao":
        from partx.quant.torchao_int8 import quantize_torchao

        q = quantize_torchao(model, device)
        return QuantResult(q, QuantReport(method, names, _float_linears(model, names), model_size_bytes(q),
                                          device=str(device)))
    return _quantize_onnx(model, method, calib_loader, input_names, dynamic_length, workdir, calib_batches)


def _quantize_onnx(model, method, calib_loader, input_names, dynamic_length, workdir, calib_batches) -> QuantResult:
    from partx.quant.onnx_runtime import (OrtModel, export_onnx, fold_weight_slices, quantize_onnx, u8s8_saturates,
                                         weight_matmul_nodes)

    calib = list(calib_loader) if not isinstance(calib_loader, (list, tuple)) else calib_loader
    example = _first_batch(calib)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
    else:
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
    try:
        fp32 = export_onnx(copy.deepcopy(model), example, folder / "model_fp32.onnx", input_names, dynamic_length)
        names = [f"input_{i}" for i in range(len(example))] if input_names is None else list(input_names)
        feeds = [{n: torch.cat([a] * k).numpy() for n, a in zip(names, example)} for k in (1, 2)]
        folded = fold_weight_slices(fp32, feeds)  # class attention's W_q / W_kv become weights (exact)
        weights, others = weight_matmul_nodes(fp32)
        if method == "onnx":
            path, quantized, kept = fp32, [], [f"{n} (fp32 model)" for n in weights]
            notes = ["ONNX Runtime fp32 (CPUExecutionProvider)"]
        else:
            mode = "dynamic" if method == "onnx-int8-dynamic" else "qdq"
            ops = ("MatMul", "Gemm", "Conv") if method == "onnx-int8-conv" else ("MatMul", "Gemm")
            path = folder / f"model_{method}.onnx"
            quantized = quantize_onnx(fp32, path, mode, calib, max_batches=calib_batches, op_types=ops)
            notes_extra = (["7-bit weights (reduce_range): this x86 CPU has no VNNI, where U8S8 int16 sums saturate"]
                           if u8s8_saturates() else [])
            kept = [f"{n} (activation x activation)" for n in others]
            notes = [f"ONNX Runtime {'QDQ static U8S8 per-channel, MinMax calibration' if mode == 'qdq' else 'dynamic'} int8 "
                     f"on weight {'/'.join(ops)} only"] + notes_extra
        if folded:
            notes.append(f"{len(folded)} run-time slices of a weight (class attention's packed W_q / W_kv) folded "
                         "into weights before quantization (fold_weight_slices, exact)")
        runner = OrtModel(path)
        runner.enable_trim(example)  # cut trailing padding per call, as weaver's ParT does in torch
        notes.append(f"padding trim {runner.trim_status}")
        size = path.stat().st_size
    finally:
        if tmp is not None:
            tmp.cleanup()
    return QuantResult(runner, QuantReport(method, quantized, kept, size, notes=notes))
