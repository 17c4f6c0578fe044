#!/usr/bin/env python
"""Benchmark jet-tagging models: params, FLOPs/MACs, latency, throughput, peak memory vs length N.

    python analysis/benchmark.py --models ParT,LinformerParT,MambaParT,PFN --lengths 128,256,512,1024 \
        --batch-sizes 8 --dtypes fp32 --threads 2 --max-seconds 20 --out benchmarks/cpu/scaling

A thin CLI over ``partx.perf.harness``; see docs/benchmarks.md. Bad arguments, an unreadable or
mismatched checkpoint, a model that cannot be built and an unwritable --out exit with status 2 and one
error line before anything is measured. Outputs are staged in a hidden folder in (or beside) --out and moved
into it only when complete: a failed or interrupted run (Ctrl-C: one line, status 130) leaves --out as
it was.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partx.atomic import atomic_dir  # noqa: E402
from partx.cli import ArgumentParser, csv_list, positive_int, run_main  # noqa: E402
from partx.perf.harness import DTYPES, BenchConfig, BenchmarkError  # noqa: E402
from partx import registry  # noqa: E402
from partx.perf.models import parse_overrides  # noqa: E402


def _ints(name):
    def parse(text):
        try:
            vals = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be comma-separated integers, got {text!r}") from None
        if not vals:
            raise argparse.ArgumentTypeError(f"{name} is empty")
        for v in vals:
            if v < 1:
                raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return vals

    return parse


def _stem(text: str) -> str:
    # the stem names files inside --out: a path ("../x") would write outside it, "" or ".x" hidden files
    if not text or text.startswith(".") or "/" in text or "\\" in text:
        raise argparse.ArgumentTypeError(f"--stem must be a plain file name (no '/', not empty or hidden), got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="benchmark.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=csv_list, default=["ParT"], help=f"comma-separated: {', '.join(registry.names())} or network file paths")
    p.add_argument("--lengths", type=_ints("--lengths"), default=[128], help="particle counts N (default 128)")
    p.add_argument("--batch-sizes", type=_ints("--batch-sizes"), default=[1])
    p.add_argument("--dtypes", type=csv_list, default=["fp32"], help=f"comma-separated from {', '.join(DTYPES)}")
    p.add_argument("--data-config", default="data/JetClass/JetClass_full.yaml")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH|CARD",
                   help="state_dict for a model (repeatable), or a model card of models/ (models/<name> or its name), "
                        "benchmarked as one more model with the card's network, options and weights")
    p.add_argument("-o", "--model-option", action="append", default=[], metavar="MODEL:KEY=VALUE",
                   help="get_model override for one model, e.g. ParT:num_layers=1 (value literal_eval-ed; repeatable)")
    p.add_argument("--data-files", default=None, help="glob of ROOT/parquet files: real jets instead of synthetic ones")
    p.add_argument("--fill", default="full", help="'full' (all N particles real, default) or a real-particle fraction, e.g. 0.4")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before torch.utils.benchmark's own warm-up")
    p.add_argument("--min-run-time", type=float, default=0.2, help="seconds timed per configuration before it may stop")
    p.add_argument("--max-seconds", type=float, default=10.0, help="timed seconds per configuration at most (default 10)")
    p.add_argument("--iqr-threshold", type=float, default=0.1, help="stop timing once IQR / median is below this")
    p.add_argument("--flops-batch", type=positive_int, default=None,
                   help="jets used for the FLOP count (per-sample = total / jets); default 1 with --fill full, else 8")
    p.add_argument("--length-buckets", type=positive_int, default=None, metavar="JETS",
                   help="run every batch as length-sorted sub-batches of JETS jets (same outputs; each cut at its own "
                        "longest jet), for every model and dtype of the run")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads")
    p.add_argument("--baseline", default="ParT", help="model the ratios refer to ('none' for no ratios)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default="benchmarks/cpu", help="output directory")
    p.add_argument("--stem", type=_stem, default="benchmark", help="output file stem (a plain file name)")
    return p


def config_from_args(args) -> BenchConfig:
    checkpoints = {}
    for item in args.checkpoint:
        if "=" not in item:
            from partx.models_store.card import CardError
            from partx.models_store.loader import available, card_for

            try:
                card = card_for(item)
            except CardError:
                card = None
            if card is None:
                raise BenchmarkError(f"--checkpoint must be NAME=PATH or a model card of models/ "
                                     f"({', '.join(available()) or 'none'}), got {item!r}")
            if item not in args.models:
                args.models.append(item)
            continue
        name, path = item.split("=", 1)
        checkpoints[name] = path
    options: dict[str, list[str]] = {}
    for item in args.model_option:
        if ":" not in item:
            raise BenchmarkError(f"-o/--model-option must be MODEL:KEY=VALUE, got {item!r}")
        name, kv = item.split(":", 1)
        options.setdefault(name, []).append(kv)
    try:
        model_options = {k: parse_overrides(v) for k, v in options.items()}
    except ValueError as e:
        raise BenchmarkError(str(e)) from None
    unknown = set(model_options) - set(args.models)
    if unknown:
        raise BenchmarkError(f"-o given for model(s) not benchmarked: {', '.join(sorted(unknown))}")
    baseline = None if args.baseline.lower() == "none" else args.baseline
    if baseline is not None and baseline not in args.models:
        baseline = None if args.baseline == "ParT" else baseline  # default baseline absent: no ratios
    return BenchConfig(
        models=args.models, lengths=args.lengths, batch_sizes=args.batch_sizes, dtypes=args.dtypes,
        data_config=args.data_config, device=args.device, checkpoints=checkpoints, model_options=model_options,
        data_files=args.data_files, fill=args.fill, warmup=args.warmup, min_run_time=args.min_run_time,
        max_seconds=args.max_seconds, iqr_threshold=args.iqr_threshold, threads=args.threads,
        baseline=baseline, flops_batch=args.flops_batch,
        measure_memory=not args.no_memory, seed=args.seed, length_buckets=args.length_buckets,
    )


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    from partx.perf.harness import run_benchmark, validate
    from partx.perf.report import write_benchmark

    cfg = config_from_args(args)
    validate(cfg)  # BenchmarkError: a partx.cli.UserError, one line and exit 2
    command = "python analysis/benchmark.py " + " ".join(shlex.quote(a) for a in argv)
    out = Path(args.out)
    try:
        # the staging folder is created first: an unwritable --out fails (UnwritableOutput) before any work;
        # any exception, Ctrl-C included, removes it and leaves --out as it was
        with atomic_dir(out, merge=True) as stage:
            result = run_benchmark(cfg, progress=not args.no_progress)
            if not any(r.get("status") == "ok" for r in result.rows):
                raise _NothingMeasured(result.rows[0]["status"])
            written = [out / p.relative_to(stage) for p in write_benchmark(result.as_dict(), stage, command, args.stem)]
    except _NothingMeasured as e:
        print(f"ERROR: no configuration was measured ({e}); nothing written to {out}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    for r in result.rows:
        if r.get("status") != "ok":
            print(f"warning: {r['model']} N={r['N']} B={r['batch']} {r['dtype']}: {r['status']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


class _NothingMeasured(Exception):
    """Every configuration failed while measuring: the staged folder is dropped."""


if __name__ == "__main__":
    sys.exit(main())
