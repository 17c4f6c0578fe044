#!/usr/bin/env python
"""Profile one model: per-op and per-module time/memory/FLOPs, Chrome trace, roofline classification.

    python analysis/profile_model.py --model ParT --length 128 --batch-size 64 --threads 2 --out benchmarks/profile_ParT

Writes trace.json (chrome://tracing, Perfetto or TensorBoard), profile.json, ops.csv, modules.csv,
profile.md and time_breakdown.png to --out and prints each path. A thin CLI over partx.perf.profiler.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    p = _Parser(prog="profile_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--data-config", default="data/JetClass/JetClass_full.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "int8", "bf16"])
    p.add_argument("--fill", default="full")
    p.add_argument("-o", "--model-option", action="append", default=[], metavar="[MODEL:]KEY=VALUE")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device-peak", default=None, help="roofline device: cpu (measured; default on CPU), H100-SXM, H200, A100-SXM")
    p.add_argument("--peak-flops", type=float, default=None, help="override peak FLOP/s")
    p.add_argument("--peak-bw", type=float, default=None, help="override bandwidth in bytes/s")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default=None, help="output directory (default benchmarks/profile_<model>)")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    import torch

    from partx.perf import inputs as _inputs
    from partx.perf import models as _models
    from partx.perf import profiler as _prof
    from partx.perf import report as _report
    from partx.perf import roofline as _roof

    if args.length < 1 or args.batch_size < 1:
        parser.exit(2, f"{parser.prog}: error: --length and --batch-size must be >= 1\n")
    try:
        fill = _inputs.parse_fill(args.fill)
        kv = [item.split(":", 1)[1] if ":" in item.split("=", 1)[0] else item for item in args.model_option]
        spec = _models.resolve_model(args.model, args.checkpoint, _models.parse_overrides(kv))
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available")
        if args.dtype == "int8" and device.type != "cpu":
            raise ValueError("int8 (dynamic quantization) runs on CPU only")
        if device.type == "cuda" and args.device_peak is None:
            peak = _roof.gpu_peak_for(torch.cuda.get_device_name(device))
            if peak is None:
                raise ValueError("unknown GPU: give --device-peak or --peak-flops/--peak-bw")
            peak = _roof.device_peak(peak.name, args.peak_flops, args.peak_bw)
        else:
            peak = _roof.device_peak(args.device_peak, args.peak_flops, args.peak_bw, threads=args.threads)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    if args.threads:
        torch.set_num_threads(args.threads)
    from weaver.utils.data.config import DataConfig

    dc = DataConfig.load(args.data_config, load_observers=False, load_reweight_info=False)
    model = _models.build_model(spec, dc, args.length, device=device)
    if args.dtype == "int8":
        from partx.quant import quantize_int8

        model = quantize_int8(model)
    x = _inputs.synthetic_inputs(dc, args.length, args.batch_size, fill=fill, device=device)
    fargs = _inputs.as_forward_args(x, dc.input_names)
    out = Path(args.out or f"benchmarks/profile_{spec.name}")
    out.mkdir(parents=True, exist_ok=True)
    if args.dtype == "bf16":
        ctx = torch.autocast(device.type, dtype=torch.bfloat16)
    else:
        import contextlib

        ctx = contextlib.nullcontext()
    with ctx:
        res = _prof.profile_model(model, fargs, peak, iterations=args.iterations, warmup=args.warmup,
                                  trace_path=out / "trace.json", top=args.top)
    command = "python analysis/profile_model.py " + " ".join(shlex.quote(a) for a in argv)
    from partx.perf.harness import machine_info

    meta = dict(command=command, model=spec.name, length=args.length, batch=args.batch_size, dtype=args.dtype,
                fill=fill, machine=machine_info(args.device, args.threads))
    paths = [out / "trace.json"]
    paths.append(_report.write_json(out / "profile.json", dict(meta, device=res.device, total_self_time_ms=res.total_time_ms,
                                                               iterations=res.iterations, ops=res.ops, modules=res.modules)))
    paths.append(_report.write_csv(out / "ops.csv", res.ops, ["op", "input_shapes", "calls", "self_time_ms", "time_share",
                                                             "self_mem_mb", "flops", "bytes", "intensity", "achieved_flops", "bound"]))
    paths.append(_report.write_csv(out / "modules.csv", res.modules, ["module", "type", "params", "time_ms", "time_share", "mem_mb", "flops"]))
    paths.append(_report.atomic_write(out / "profile.md", profile_markdown(meta, res)))
    paths.append(_prof.breakdown_plot(res, out / "time_breakdown.png",
                                      title=f"{spec.name}, N={args.length}, batch {args.batch_size}, {args.dtype}, {args.device}"))
    for p in paths:
        print(p)
    return 0


def profile_markdown(meta, res) -> str:
    from partx.perf.report import _f, markdown_table

    d = res.device
    lines = [f"# Profile: {meta['model']} (N={meta['length']}, batch {meta['batch']}, {meta['dtype']})", "",
             "```", meta["command"], "```", "",
             f"Machine: {meta['machine'].get('cpu_model')}, {meta['machine'].get('threads')} threads, torch {meta['machine'].get('torch')}.",
             f"Roofline device: {d['name']} — peak {d['peak_flops'] / 1e9:.1f} GFLOP/s, bandwidth {d['bandwidth'] / 1e9:.1f} GB/s, "
             f"balance {d['balance_flop_per_byte']:.2f} FLOP/byte ({d['source']}).",
             f"Total op self time per forward: {res.total_time_ms:.1f} ms (mean of {res.iterations}).", "",
             "## Top ops (self time)", ""]
    rows = [[o["op"], o["input_shapes"][:60], _f(o["calls"], ".0f"), _f(o["self_time_ms"], ".2f"), _f(100 * o["time_share"], ".1f"),
             _f(o["flops"] / 1e6, ".1f"), _f(o["intensity"], ".1f"),
             _f(o["achieved_flops"] / 1e9 if o["achieved_flops"] else None, ".1f"), o["bound"]] for o in res.ops]
    lines += [markdown_table(["op", "input shapes", "calls", "ms", "%", "MFLOP", "FLOP/byte", "GFLOP/s", "bound"], rows), ""]
    lines += ["## Modules (inclusive time)", ""]
    rows = [[m["module"], m["type"], f"{m['params']:,}", _f(m["time_ms"], ".2f"), _f(100 * m["time_share"], ".1f"),
             _f(m["flops"] / 2e6, ".1f")] for m in res.modules]
    lines += [markdown_table(["module", "type", "params", "ms", "%", "MMAC"], rows), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
