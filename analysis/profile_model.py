#!/usr/bin/env python
"""Profile one model: per-op and per-module time/memory/FLOPs, Chrome trace, roofline classification.

    python analysis/profile_model.py --model ParT --length 128 --batch-size 64 --threads 2 --out benchmarks/profile_ParT
    python analysis/profile_model.py --checkpoint models/ParT_gen-small_full      # a trained checkpoint of models/

Writes trace.json (chrome://tracing, Perfetto or TensorBoard), profile.json, ops.csv, modules.csv,
profile.md and time_breakdown.png to --out and prints each path. A thin CLI over partx.perf.profiler.
Bad arguments, an unreadable or mismatched checkpoint and an unwritable --out exit with status 2 and one
line before any work; the files are staged in a hidden folder in (or beside) --out and moved in only when all are complete.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _positive_float(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive finite number")
    return value


def build_parser():
    from partx.cli import ArgumentParser, non_negative_int, positive_int

    p = ArgumentParser(prog="profile_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None,
                   help="registered name, network file, or a model card of models/ (required unless --checkpoint is a card)")
    p.add_argument("--length", type=positive_int, default=128)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--checkpoint", default=None,
                   help="weights for --model, or a model card (models/<name> or its name): network, options, data config "
                        "and weights from the card")
    p.add_argument("--data-config", default=None, help="default: the card's, else data/JetClass/JetClass_full.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "int8", "bf16"])
    p.add_argument("--fill", default="full")
    p.add_argument("-o", "--model-option", action="append", default=[], metavar="[MODEL:]KEY=VALUE")
    p.add_argument("--iterations", type=positive_int, default=3)
    p.add_argument("--warmup", type=non_negative_int, default=2)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--device-peak", default=None, help="roofline device: cpu (measured; default on CPU), H100-SXM, H200, A100-SXM")
    p.add_argument("--peak-flops", type=_positive_float, default=None, help="override peak FLOP/s")
    p.add_argument("--peak-bw", type=_positive_float, default=None, help="override bandwidth in bytes/s")
    p.add_argument("--top", type=positive_int, default=25, help="rows of the op and module tables")
    p.add_argument("--out", default=None, help="output directory (default benchmarks/profile_<model>)")
    return p


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    import torch

    from partx.atomic import atomic_dir, atomic_write
    from partx.cli import UserError
    from partx.perf import harness as _harness
    from partx.perf import inputs as _inputs
    from partx.perf import models as _models
    from partx.perf import profiler as _prof
    from partx.perf import report as _report
    from partx.perf import roofline as _roof

    from partx.models_store.loader import cli_card

    card = cli_card(args.checkpoint, {"--model": args.model, "-o": args.model_option})
    if card is None and args.model is None:
        raise UserError("give --model (a registered name, network file or model card) or --checkpoint models/<name>")
    model_name, checkpoint = (str(card.path), None) if card is not None else (args.model, args.checkpoint)
    if args.data_config is None:
        from partx.models_store.loader import data_config_path

        args.data_config = str(data_config_path(card)) if card is not None else "data/JetClass/JetClass_full.yaml"
    try:
        fill = _inputs.parse_fill(args.fill)
        kv = [item.split(":", 1)[1] if ":" in item.split("=", 1)[0] else item for item in args.model_option]
        spec = _models.resolve_model(model_name, checkpoint, _models.parse_overrides(kv))
        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise ValueError(f"unknown --device {args.device!r}; use cpu or cuda") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available")
        if args.dtype == "int8" and device.type != "cpu":
            raise ValueError("int8 (dynamic quantization) runs on CPU only")
        peak_name = args.device_peak
        if device.type == "cuda" and peak_name is None:
            gpu = _roof.gpu_peak_for(torch.cuda.get_device_name(device))
            if gpu is None:
                raise ValueError("unknown GPU: give --device-peak or --peak-flops/--peak-bw")
            peak_name = gpu.name
        if peak_name not in (None, "cpu", "CPU", *_roof.DEVICE_PEAKS):
            raise ValueError(f"unknown --device-peak {peak_name!r}; known: cpu, {', '.join(_roof.DEVICE_PEAKS)}")
        dc = _harness.load_data_config(args.data_config)
        _harness.preflight([spec], [args.length], dc)  # a bad checkpoint or build: exit 2 before any work
    except (ValueError, FileNotFoundError) as e:  # BenchmarkError is a ValueError (and a UserError)
        raise UserError(str(e)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or f"benchmarks/profile_{spec.name}")
    command = "python analysis/profile_model.py " + " ".join(shlex.quote(a) for a in argv)
    names = ["trace.json", "profile.json", "ops.csv", "modules.csv", "profile.md", "time_breakdown.png"]
    # nothing reaches --out unless every file is complete; an unwritable --out fails here, before any work
    with atomic_dir(out, merge=True) as stage:
        peak = _roof.device_peak(peak_name, args.peak_flops, args.peak_bw, threads=args.threads)
        model = _models.build_model(spec, dc, args.length, device=device)
        if args.dtype == "int8":
            from partx.quant import quantize_int8

            model = quantize_int8(model)
        x = _inputs.synthetic_inputs(dc, args.length, args.batch_size, fill=fill, device=device)
        fargs = _inputs.as_forward_args(x, dc.input_names)
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bf16" else contextlib.nullcontext()
        with ctx:
            res = _prof.profile_model(model, fargs, peak, iterations=args.iterations, warmup=args.warmup,
                                      trace_path=stage / names[0], top=args.top)
        meta = dict(command=command, model=spec.name, length=args.length, batch=args.batch_size, dtype=args.dtype,
                    fill=fill, machine=_harness.machine_info(args.device, args.threads))
        _report.write_json(stage / names[1], dict(meta, device=res.device, total_self_time_ms=res.total_time_ms,
                                                  iterations=res.iterations, ops=res.ops, modules=res.modules))
        _report.write_csv(stage / names[2], res.ops, ["op", "input_shapes", "calls", "self_time_ms", "time_share",
                                                      "self_mem_mb", "flops", "bytes", "intensity", "achieved_flops", "bound"])
        _report.write_csv(stage / names[3], res.modules, ["module", "type", "params", "time_ms", "time_share", "mem_mb", "flops"])
        atomic_write(stage / names[4], _report.profile_markdown(meta, res))
        _prof.breakdown_plot(res, stage / names[5],
                             title=f"{spec.name}, N={args.length}, batch {args.batch_size}, {args.dtype}, {args.device}")
    for name in names:
        print(out / name)
    return 0


def main(argv: list[str] | None = None) -> int:
    from partx.cli import run_main

    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
