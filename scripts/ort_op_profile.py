#!/usr/bin/env python
"""Where ONNX Runtime spends a JetClass model's time, per operator type, fp32 and int8 (QDQ) side by side.

    OMP_NUM_THREADS=1 python scripts/ort_op_profile.py ParT --batch-size 8 --runs 4

Exports the model as ``partx.quant`` does (random weights unless ``--checkpoint``; synthetic full-length jets,
N = 128), quantizes it (``onnx-int8``, calibrated on 4 synthetic batches), runs each session ``--runs`` times
with ORT's profiler (1 thread) and prints the share of kernel time per operator type, and the sizes of
the torch state_dict and of the two ONNX files. The share of the
weight MatMuls in the fp32 profile bounds what int8 GEMMs can give: with a fraction f of the time in them,
even free int8 GEMMs leave a speed-up over ORT fp32 below 1 / (1 - f) (docs/quantization.md).
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from weaver.utils.data.config import DataConfig  # noqa: E402

from partx.cli import ArgumentParser, UserError, positive_int, run_main  # noqa: E402
from partx.perf import inputs, models  # noqa: E402
from partx.quant import model_size_bytes, quantize  # noqa: E402


def op_times(path: Path, feed: dict, runs: int) -> collections.Counter:
    """Kernel microseconds per operator type over ``runs`` calls (ORT's built-in profiler, 1 thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(path.with_suffix(""))
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    first = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warm_end = first["ts"] + first["dur"]  # the first call is a warm-up: not counted
    events = [e for e in events if e.get("ts", 0) > warm_end]
    agg: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            agg[e["args"]["op_name"]] += e["dur"]
    return agg


def _main(argv=None) -> int:
    p = ArgumentParser(prog="ort_op_profile.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="registry model, e.g. ParT")
    p.add_argument("--checkpoint", default=None, help="weaver state_dict or models/<card> (default: random weights)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--length", type=positive_int, default=128)
    p.add_argument("--runs", type=positive_int, default=4)
    p.add_argument("--top", type=positive_int, default=12)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    dc = DataConfig.load("data/JetClass/JetClass_full.yaml", load_observers=False, load_reweight_info=False)
    try:
        spec = models.resolve_model(args.model, args.checkpoint, dict(for_inference=True))
        model = models.build_model(spec, dc, args.length)
    except (ValueError, OSError, RuntimeError) as err:  # unknown model, missing / mismatched checkpoint
        raise UserError(str(err)) from None
    names = list(dc.input_names)
    calib = [inputs.as_forward_args(inputs.synthetic_inputs(dc, args.length, 16, seed=s), names) for s in range(1, 5)]
    batch = inputs.as_forward_args(inputs.synthetic_inputs(dc, args.length, args.batch_size, seed=0), names)
    feed = {n: a.numpy() for n, a in zip(names, batch)}
    with tempfile.TemporaryDirectory() as tmp:
        quantize(model, "onnx-int8", calib, input_names=names, workdir=tmp)
        files = {"fp32": Path(tmp) / "model_fp32.onnx", "int8": Path(tmp) / "model_onnx-int8.onnx"}
        profiles = {k: op_times(f, feed, args.runs) for k, f in files.items()}
        sizes = {k: f.stat().st_size for k, f in files.items()}
    base = model_size_bytes(model)
    print(f"size: torch fp32 state_dict {base / 1e6:.2f} MB, ORT fp32 {sizes['fp32'] / 1e6:.2f} MB, "
          f"ORT int8 {sizes['int8'] / 1e6:.2f} MB = {sizes['int8'] / base:.3f}x the state_dict")
    totals = {k: sum(v.values()) for k, v in profiles.items()}
    print(f"{args.model}, N = {args.length}, batch {args.batch_size}, 1 thread, ONNX Runtime kernel time per call: "
          + ", ".join(f"{k} {totals[k] / args.runs / 1e3:.1f} ms" for k in profiles))
    ops = [op for op, _ in (profiles["fp32"] + profiles["int8"]).most_common(args.top)]
    print(f"| op | fp32 share | fp32 ms | int8 share | int8 ms |\n|---|---|---|---|---|")
    for op in ops:
        cells = [f"{profiles[k][op] / totals[k] * 100:.1f} % | {profiles[k][op] / args.runs / 1e3:.1f}" for k in profiles]
        print(f"| {op} | " + " | ".join(cells) + " |")
    gemm = sum(v for op, v in profiles["fp32"].items() if op in ("MatMul", "Gemm", "FusedMatMul"))
    f = gemm / totals["fp32"]
    print(f"fp32 time in MatMul/Gemm: {f * 100:.1f} % (weight and attention products) -> int8 GEMMs alone can give "
          f"at most {1 / (1 - f):.2f}x over ORT fp32")
    return 0


def main(argv=None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
