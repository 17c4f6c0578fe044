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
import platform
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["export_onnx", "fold_weight_slices", "u8s8_saturates", "OrtModel", "quantize_onnx", "weight_matmul_nodes", "ort_session"]

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
    """An ONNX Runtime session behind a torch-like ``forward(*tensors) -> tensor`` (CPU).

    Padding trim (``enable_trim``): weaver's ParT cuts each batch's trailing padding before its blocks
    (``SequenceTrimmer``, eval mode) and its pair embedding skips padded pairs, but an exported graph runs
    at whatever length it is fed: on JetClass-like jets (~40 real particles of 128) ORT then does ~10x
    the pair work torch does. With trimming on, ``forward`` slices every input that shares the mask's
    particle axis to the batch's last real particle + 1 (exact for any mask layout, not only real-first)
    before calling the session. It is only turned on for graphs whose particle axis is dynamic and whose
    output was checked to be unchanged by it (models that pool over the padded length, e.g. a mean over
    N, would change, and stay untrimmed).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.session = ort_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.trim_mask: int | None = None  # index of the mask input when trimming is on
        self.trim_floor = 1  # shortest length the graph is fed
        self.trim_status = "off (not checked)"

    def _feed(self, args: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
        arrays = [a.detach().cpu().numpy().astype(np.float32, copy=False) for a in args]
        if self.trim_mask is not None:
            arrays = _trim_to_last_real(arrays, self.trim_mask, self.trim_floor)
        return dict(zip(self.input_names, arrays))

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, self._feed(args))[0])

    def enable_trim(self, example: Sequence[torch.Tensor], atol: float = 1e-5) -> bool:
        """Turn padding trim on if this graph allows it; ``trim_status`` says what was decided and why.

        Checked on ``example`` (one batch of forward arguments) made padded (the first L particles real,
        the rest mask 0 and zeroed): trimmed and untrimmed outputs must agree within ``atol`` at an even and
        an odd L near 40 % of N (JetClass-like fill). Some graphs cannot run at very short lengths (a kNN
        with k neighbours needs k particles): the shortest length that runs and agrees (1, 2, 4, ...) becomes
        the floor the trim never cuts below.
        """
        inputs = self.session.get_inputs()
        masks = [i for i, x in enumerate(inputs) if "mask" in x.name.lower() and len(x.shape) == 3]
        if not masks:
            self.trim_status = "off: no input named '*mask*' with a particle axis"
            return False
        m = masks[0]
        if not isinstance(inputs[m].shape[2], str):
            self.trim_status = "off: the graph's particle axis is fixed (traced at one length)"
            return False
        arrays = [a.detach().cpu().numpy().astype(np.float32) for a in example]
        n = arrays[m].shape[2]
        if n < 4:
            self.trim_status = f"off: the example has only {n} particles"
            return False

        def agrees(length: int, floor: int) -> tuple[bool, str]:
            keep = (np.arange(n) < length).astype(np.float32)
            padded = [a * keep if a.ndim == 3 and a.shape[2] == n else a for a in arrays]
            try:
                full = self.session.run(None, dict(zip(self.input_names, padded)))[0]
                cut = self.session.run(None, dict(zip(self.input_names, _trim_to_last_real(padded, m, floor))))[0]
            except Exception as e:  # noqa: BLE001 - a graph that cannot run shorter is simply not trimmed there
                return False, f"the graph failed at length {length} of {n} ({type(e).__name__})"
            d = float(np.abs(full - cut).max()) if full.size else 0.0
            if not np.isfinite(d) or d > atol:
                return False, f"output depends on the padded length (max |diff| {d:.2g} > {atol:g} at {length} real of {n})"
            return True, ""

        for length in (n // 2, 2 * n // 5 + 1):
            ok, why = agrees(length, 1)
            if not ok:
                self.trim_status = f"off: {why}"
                return False
        floor = next((k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n // 2 and agrees(k, 1)[0]), n // 2)
        self.trim_mask, self.trim_floor = m, floor
        self.trim_status = ("on: inputs cut to the batch's last real particle before each call"
                            + (f" (never below {floor})" if floor > 1 else "")
                            + f"; checked equal to the padded graph within {atol:g}")
        return True

    def size_bytes(self) -> int:
        return self.path.stat().st_size


def _trim_to_last_real(arrays: list[np.ndarray], mask_index: int, floor: int = 1) -> list[np.ndarray]:
    """Cut every (B, C, N) array sharing the mask's N to max(last position where any jet has mask != 0, + 1; floor)."""
    mask = arrays[mask_index]
    n = mask.shape[2]
    real = (mask != 0).any(axis=(0, 1))  # (N,)
    length = max(int(np.flatnonzero(real)[-1]) + 1 if real.any() else 1, floor)
    if length >= n:
        return arrays
    return [np.ascontiguousarray(a[:, :, :length]) if a.ndim == 3 and a.shape[2] == n else a for a in arrays]


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


def fold_weight_slices(onnx_path: str | os.PathLike, feeds: Sequence[dict[str, np.ndarray]]) -> list[str]:
    """Turn ``Slice``s of a weight whose bounds are computed at run time into weights; rewrite ``onnx_path``.

    torch's packed in-projection splits ``in_proj.weight`` into W_q and W_kv when the query is not the key
    (weaver ParT's class-attention blocks: ``F._in_projection_packed``); the TorchScript export computes the
    split points from the input's shape, so the MatMuls read ``Transpose(Slice(W, start, end))`` with
    run-time bounds. No quantizer treats that as a weight: those layers stayed fp32 (and kept ~90 % of the
    float bytes of an int8 ParT). The bounds depend only on the embedding width, so they are read once by
    running the model on ``feeds`` (≥ 2 batches of different sizes: a bound that differs between them is
    left alone) and each such Slice becomes an initializer holding the sliced weight. Exact: the graph
    computes the same numbers. Returns the names of the folded Slice nodes.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    slices = [n for n in graph.node if n.op_type == "Slice" and n.input[0] in inits
              and any(x and x not in inits for x in n.input[1:])]
    if not slices or len(feeds) < 2:
        return []
    probes = sorted({x for n in slices for x in n.input[1:] if x and x not in inits})
    probe_model = onnx.ModelProto()
    probe_model.CopyFrom(model)
    probe_model.graph.output.extend(helper.make_tensor_value_info(x, onnx.TensorProto.INT64, None) for x in probes)
    with tempfile.TemporaryDirectory() as tmp:
        probe_path = Path(tmp) / "probe.onnx"
        onnx.save(probe_model, str(probe_path))
        sess = ort_session(probe_path, threads=1)
        values = [dict(zip(probes, sess.run(probes, feed))) for feed in feeds]
    folded = []
    for n in slices:
        bounds = []
        for x in n.input[1:]:
            if not x:
                bounds.append(None)
            elif x in inits:
                bounds.append(numpy_helper.to_array(inits[x]))
            elif all(np.array_equal(v[x], values[0][x]) for v in values[1:]):
                bounds.append(values[0][x])
            else:
                break
        else:
            w = numpy_helper.to_array(inits[n.input[0]])
            starts, ends, axes, steps = (list(bounds) + [None] * 4)[:4]
            axes = range(len(starts)) if axes is None else axes
            steps = [1] * len(starts) if steps is None else steps
            index = [slice(None)] * w.ndim
            for a, s0, e0, st in zip(axes, starts, ends, steps):
                index[int(a)] = slice(int(s0), int(e0), int(st))
            w = w[tuple(index)]
            out = n.output[0]
            users = [u for u in graph.node if out in u.input]
            perm = [list(a.ints) for u in users for a in u.attribute if a.name == "perm"]
            if len(users) == 1 and users[0].op_type == "Transpose" and perm in ([[1, 0]], []) and w.ndim == 2:
                # Slice -> Transpose (F.linear's W^T): store W^T itself, as the export stores every other Linear
                w, out = w.T, users[0].output[0]
                graph.node.remove(users[0])
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), out))
            graph.node.remove(n)
            folded.append(n.name)
    outputs = {o.name for o in graph.output}
    while True:  # drop the shape arithmetic that only fed the folded bounds
        used = {x for n in graph.node for x in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    if folded:
        tmp_path = Path(str(onnx_path) + ".tmp")
        onnx.save(model, str(tmp_path))
        os.replace(tmp_path, onnx_path)
    return folded


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


def u8s8_saturates(flags: Iterable[str] | None = None, machine: str | None = None) -> bool:
    """True where ONNX Runtime's uint8 x int8 (U8S8) kernels can saturate: x86 CPUs without VNNI.

    There ORT multiplies with VPMADDUBSW, which adds two uint8 x int8 products into an int16 and saturates
    (ORT's quantization guide, "when and why do I need to try U8U8" / ``reduce_range``). Measured here on an
    AVX2-only EPYC: the tiny test ParT moved softmax outputs by up to 0.43 (mean 0.036) with full-range
    int8 weights, and by 0.026 (mean 0.004) with ``reduce_range`` (7-bit weights); on the AVX-512 VNNI
    machine of the earlier sessions full range was fine (VPDPBUSD accumulates in int32). ``flags``: the
    CPU's feature flags (default: read from /proc/cpuinfo; unknown on an x86 machine counts as no VNNI).
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False  # ARM / others: ORT's int8 kernels there accumulate in int32
    if flags is None:
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        except OSError:
            flags = []
    return not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags)


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, mode: str = "qdq",
                  calib: Iterable[Sequence[torch.Tensor]] | None = None, max_batches: int = 8,
                  op_types: Sequence[str] = ("MatMul", "Gemm"), reduce_range: bool | None = None) -> list[str]:
    """Write the int8 model of ``fp32_path`` to ``out_path``; returns the quantized node names.

    ``op_types``: weight layers to quantize; add ``"Conv"`` for the pair embedding's 1x1 convolutions.
    ``reduce_range``: 7-bit weights; default :func:`u8s8_saturates` (x86 without VNNI).
    """
    reduce_range = u8s8_saturates() if reduce_range is None else reduce_range
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_dynamic, quantize_static)

    nodes, _ = weight_matmul_nodes(fp32_path, op_types)
    if not nodes:
        raise ValueError(f"{fp32_path}: no weight MatMul/Gemm node to quantize")
    if mode == "dynamic":
        quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                         per_channel=False, op_types_to_quantize=list(op_types), reduce_range=reduce_range)
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
                        reduce_range=reduce_range,
                        op_types_to_quantize=list(op_types), extra_options={"ActivationSymmetric": False})
    return nodes
