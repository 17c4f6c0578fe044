#!/usr/bin/env python
"""Tracking models' cost vs number of hits: FLOPs, throughput (hits/s), peak memory; ratios to HEPT.

    python analysis/tracking_cost.py --models HEPT,Mamba,MambaA,MambaB --sizes S \
        --hits 3000,6000,10000,15000,20000,60000 --threads 2 --out benchmarks/cpu/tracking_cost

One event (batch 1), forward only, fp32, all models in one run on one machine (the seed paper's Figs. 3-4).
Randomly initialised networks by default; ``--checkpoint models/HEPT-S_gen-mu40_3k,models/MambaB-S_gen-mu40_3k``
measures trained checkpoints of models/ (network and size from their cards, docs/models.md).
Inputs are random pixel hits with realistic coordinate ranges, or with ``--data GLOB`` the hits of
preprocessed TrackML ROOT files (data/TrackML/*.yaml layout). A configuration whose single forward takes
(or, extrapolated from the previous N, would take) longer than --max-seconds is skipped and marked in the
table. See partx/perf/tracking_cost.py for how FLOPs are counted and docs/tracking_models.md for results.
Bad options and an unwritable --out end in one line, exit 2, before any work; --out is written atomically
(a failed run leaves it as it was).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partx.atomic import atomic_dir  # noqa: E402
from partx.cli import ArgumentParser, csv_list, run_main  # noqa: E402
from partx.perf.tracking_cost import DEFAULT_HITS, MODELS, SCAN_FLOPS_PER_ELEMENT, CostConfig, TrackingCostError, validate  # noqa: E402

QUICK_HITS = [64, 256]


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hits must be comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="tracking_cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=csv_list, default=None, help=f"comma-separated from {', '.join(MODELS)} (default all)")
    p.add_argument("--checkpoint", type=csv_list, default=None,
                   help="comma-separated models/ cards of the tracking family (e.g. models/HEPT-S_gen-mu40_3k): "
                        "measure these trained networks instead of randomly initialised --models / --sizes")
    p.add_argument("--sizes", type=csv_list, default=None, help="comma-separated from S, M, L (default S)")
    p.add_argument("--hits", type=_ints, default=None, help=f"hit counts N (default {','.join(map(str, DEFAULT_HITS))})")
    p.add_argument("--quick", action="store_true", help=f"a seconds-long smoke run: hits {QUICK_HITS}, S only, short timing")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--max-seconds", type=float, default=60.0, help="skip a model/size at N where one forward takes longer (default 60)")
    p.add_argument("--time-budget", type=float, default=5.0, help="seconds timed per configuration at most (default 5)")
    p.add_argument("--scan-flops", type=int, default=SCAN_FLOPS_PER_ELEMENT,
                   help=f"FLOPs per (step, channel, state) of a Mamba scan (default {SCAN_FLOPS_PER_ELEMENT}, mamba-ssm's count)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--data", default=None, help="glob of preprocessed TrackML ROOT files: real hits instead of random ones")
    p.add_argument("--data-config", default="data/TrackML/TrackML_full.yaml", help="YAML naming the hit branches (with --data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default="benchmarks/cpu/tracking_cost", help="output folder (replaced atomically)")
    return p


def config_from_args(args) -> CostConfig:
    hits = args.hits or (QUICK_HITS if args.quick else list(DEFAULT_HITS))
    if args.checkpoint and (args.models or args.sizes):
        raise TrackingCostError("--checkpoint takes model and size from the cards: drop --models / --sizes")
    cfg = CostConfig(
        models=[] if args.checkpoint else (args.models or list(MODELS)), sizes=[] if args.checkpoint else (args.sizes or ["S"]),
        checkpoints=args.checkpoint or [], hits=hits, device=args.device, threads=args.threads,
        max_seconds=args.max_seconds, time_budget=0.3 if args.quick else args.time_budget,
        min_run_time=0.05 if args.quick else 0.2, measure_memory=not args.no_memory,
        scan_flops_per_element=args.scan_flops, seed=args.seed, data=args.data, data_config=args.data_config,
    )
    validate(cfg)
    return cfg


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.data and not Path(args.data_config).is_file():
        raise TrackingCostError(f"--data-config {args.data_config} does not exist")
    from partx.perf.harness import machine_info
    from partx.perf.tracking_cost import run_cost
    from partx.perf.tracking_cost_report import write_cost

    command = "python analysis/tracking_cost.py " + " ".join(shlex.quote(a) for a in argv)
    out = Path(args.out)
    # the staging folder is made first: an unwritable --out fails (UnwritableOutput, exit 2) before any work;
    # an error or Ctrl-C removes it and leaves a previous --out byte-identical
    with atomic_dir(out) as stage:
        rows = run_cost(cfg, progress=not args.no_progress)
        meta = dict(device=cfg.device, machine=machine_info(cfg.device, cfg.threads), config=vars(cfg),
                    inputs=f"real hits from {args.data}" if args.data else "random pixel hits (partx.perf.tracking_cost.random_hits)",
                    scan_flops_per_element=cfg.scan_flops_per_element)
        written = [out / p.relative_to(stage) for p in write_cost(rows, meta, stage, command)]
    for path in written:
        print(path)
    for r in rows:
        if r.get("status") != "ok":
            print(f"warning: {r['model']}-{r['size']} N={r['N']}: {r['status']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
