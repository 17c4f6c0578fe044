"""ONNX export and ONNX Runtime int8 (QDQ static, or dynamic) for deployment.

The model is exported as weaver's ``--export-onnx`` does (TorchScript-based ``torch.onnx.export``,
``dynamo=False``, batch axis dynamic, the particle axis dynamic unless ``dynamic_length=False``), then
quantized with ``onnxruntime.quantization``:

* ``qdq``: static, QDQ format (QuantizeLinear/DequantizeLinear pairs that ORT fuses into int8 kernels),
  activations uint8 and weights int8 per output channel (U8S8, the x86 AVX2/AVX-512/VNNI layout ORT
  recommends), activation ranges calibrated (MinMax) on real or generated jets;
* ``dynamic``: int8 weights, activation ranges computed per call (``MatMulInteger``), no calibration.

Only the weight products are quantized: MatMul/Gemm nodes whose second operand is an initializer (the
Linear layers). Attention's activation-activation MatMuls, Softmax, LayerNorm, the pair embedding's
Conv and everything else stay float (``weight_matmul_nodes``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["export_onnx", "OrtModel", "quantize_onnx", "weight_matmul_nodes", "ort_session"]

OPSET = 17  # LayerNormalization is a single op from 17 on (weaver's default is 15)


def export_onnx(model: nn.Module, example_args: Sequence[torch.Tensor], path: str | os.PathLike,
                input_names: Sequence[str] | None = None, dynamic_length: bool = True) -> Path:
    """Export ``model`` (eval, CPU) to ``path``; inputs (B, C, N): axis 0 dynamic, axis 2 too if ``dynamic_length``."""
    names = list(input_names or [f"input_{i}" for i in range(len(example_args))])
    axes = {n: ({0: "B", 2: f"N_{i}"} if dynamic_length and a.dim() == 3 else {0: "B"})
            for i, (n, a) in enumerate(zip(names, example_args))}
    axes["output"] = {0: "B"}
    path = Path(path)
    args = tuple(a.cpu() for a in example_args)
    if args[0].shape[0] == 1:  # a size-1 axis is baked into the traced graph (see weaver's export)
        args = tuple(torch.cat([a, a]) for a in args)
    with torch.no_grad():
        torch.onnx.export(model.cpu().eval(), args, str(path), input_names=names, output_names=["output"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return path


def ort_session(path: str | os.PathLike, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OrtModel(nn.Module):
    """An ONNX Runtime session behind a torch-like ``forward(*tensors) -> tensor`` (CPU)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.session = ort_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        feed = {n: a.detach().cpu().numpy().astype(np.float32, copy=False) for n, a in zip(self.input_names, args)}
        return torch.from_numpy(self.session.run(None, feed)[0])

    def size_bytes(self) -> int:
        return self.path.stat().st_size


def weight_matmul_nodes(onnx_path: str | os.PathLike, op_types: Sequence[str] = ("MatMul", "Gemm")
                        ) -> tuple[list[str], list[str]]:
    """(names of ``op_types`` nodes whose second input is an initializer, names of the other ``op_types`` nodes)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    # weights may reach the MatMul through a Transpose/Identity of an initializer (TorchScript export of Linear)
    const_out = {o for n in graph.node if n.op_type in ("Transpose", "Identity") and n.input and n.input[0] in inits
                 for o in n.output}
    weights, others = [], []
    for n in graph.node:
        if n.op_type in op_types:
            (weights if len(n.input) > 1 and (n.input[1] in inits or n.input[1] in const_out) else others).append(n.name)
    return weights, others


class _Reader:
    """onnxruntime CalibrationDataReader over batches of forward arguments."""

    def __init__(self, batches: Iterable[Sequence[torch.Tensor]], names: Sequence[str], max_batches: int):
        self._it = iter(batches)
        self.names, self.left = list(names), max_batches

    def get_next(self):
        if self.left <= 0:
            return None
        batch = next(self._it, None)
        if batch is None:
            return None
        self.left -= 1
        return {n: a.detach().cpu().numpy().astype(np.float32) for n, a in zip(self.names, batch)}


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, mode: str = "qdq",
                  calib: Iterable[Sequence[torch.Tensor]] | None = None, max_batches: int = 8,
                  op_types: Sequence[str] = ("MatMul", "Gemm")) -> list[str]:
    """Write the int8 model of ``fp32_path`` to ``out_path``; returns the quantized node names.

    ``op_types``: weight layers to quantize; add ``"Conv"`` for the pair embedding's 1x1 convolutions.
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_dynamic, quantize_static)

    nodes, _ = weight_matmul_nodes(fp32_path, op_types)
    if not nodes:
        raise ValueError(f"{fp32_path}: no weight MatMul/Gemm node to quantize")
    if mode == "dynamic":
        quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                         per_channel=False, op_types_to_quantize=list(op_types))
        return nodes
    if mode != "qdq":
        raise ValueError(f"unknown ONNX Runtime quantization mode {mode!r}; choose qdq or dynamic")
    if calib is None:
        raise ValueError("ONNX Runtime QDQ (static) quantization needs calibration batches")
    import onnxruntime as ort

    names = [i.name for i in ort_session(fp32_path).get_inputs()]
    reader = _Reader(calib, names, max_batches)
    CalibrationDataReader.register(_Reader)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:  # shape inference + graph cleanup, as ORT's quantization guide recommends
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the raw export instead
            pre = Path(fp32_path)
        del ort
        nodes, _ = weight_matmul_nodes(pre, op_types)  # pre-processing may rename nodes
        quantize_static(str(pre), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                        op_types_to_quantize=list(op_types), extra_options={"ActivationSymmetric": False})
    return nodes
