#!/usr/bin/env python
"""Cost per event of the pileup classifiers (paper's pileup sizes) at a given multiplicity: FLOPs, latency, memory.

    python analysis/pileup_cost.py --models HEPT,MambaB --particles 8000,10000 --threads 2 --out benchmarks/cpu/pileup_cost.json

One event (batch 1), forward only, fp32, all models in the same run (ratios to HEPT are what carries over to
another machine). The measurement is partx.perf.tracking_cost's (FlopCounterMode + analytic Mamba scans,
partx.perf.timing latency, peak memory) applied to ``partx.models.pileup.PileupClassifier``; the inputs are
random particles with pileup-like ranges (|eta| < 4, phi, exponential pT, pid classes 0..6).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partx.cli import ArgumentParser, UserError, csv_list, run_main  # noqa: E402

MODELS = {"HEPT": "hept", "Mamba": "mamba", "MambaA": "mamba_a", "MambaB": "mamba_b"}


def random_event(n: int, seed: int = 0):
    """features (1, n, 7), pid (1, n), coords (1, n, 4), mask (1, n)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    eta = torch.rand(1, n, generator=g) * 8 - 4
    phi = torch.rand(1, n, generator=g) * 6.2832 - 3.1416
    pt = torch.empty(1, n).exponential_(1.0, generator=g) + 0.3
    pid = torch.randint(0, 7, (1, n), generator=g).float()
    feats = torch.stack([eta, phi, pt * phi.cos(), pt * phi.sin(), pt, pt * eta.cosh(), eta], -1)
    return feats, pid, torch.stack([eta, phi, eta, phi], -1), torch.ones(1, n, dtype=torch.bool)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = ArgumentParser(prog="pileup_cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=csv_list, default=list(MODELS))
    p.add_argument("--particles", type=csv_list, default=["10000"], help="comma-separated multiplicities (default 10000)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--time-budget", type=float, default=5.0)
    p.add_argument("--flops-only", action="store_true", help="count FLOPs only (one forward per model; no timing)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement (slow on CPU for Mamba)")
    p.add_argument("--out", default=None, help="JSON file (written atomically)")
    args = p.parse_args(argv)
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        raise UserError(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODELS)}")
    try:
        sizes = [int(n) for n in args.particles]
    except ValueError:
        raise UserError(f"--particles must be integers, got {','.join(args.particles)}") from None
    import torch

    from partx.models.pileup import build_pileup_model
    from partx.models.tracking import count_parameters
    from partx.perf.tracking_cost import CostConfig, _measure_one, count_tracking_flops

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = CostConfig(models=list(args.models), sizes=["S"], hits=sizes, threads=args.threads, time_budget=args.time_budget,
                     measure_memory=not args.no_memory, max_seconds=120.0)
    rows = []
    for n in sizes:
        inputs = random_event(n)
        for name in args.models:
            torch.manual_seed(0)
            model = build_pileup_model(MODELS[name]).eval()
            if args.flops_only:
                with torch.no_grad():
                    f = count_tracking_flops(model, inputs)
                r = dict(model=name, N=n, params=count_parameters(model), flops=f["flops"], flops_counted=f["counted"],
                         flops_scan=f["scan"], flops_per_particle=f["flops"] / n, status="flops only")
            else:
                r = dict(model=name, N=n, params=count_parameters(model), **_measure_one(model, inputs, cfg, torch.device("cpu"), n))
            rows.append(r)
            print(f"{name} N={n}: {r.get('flops', float('nan')) / 1e9:.4g} GFLOP, {r.get('latency_ms', float('nan')):.4g} ms, "
                  f"{r.get('peak_mem_mb', float('nan')):.0f} MB, {r['params']} params [{r['status']}]", flush=True)
    for r in rows:
        base = next((b for b in rows if b["model"] == "HEPT" and b["N"] == r["N"] and b.get("status") == "ok"), None)
        if base is None:
            base = next((b for b in rows if b["model"] == "HEPT" and b["N"] == r["N"] and "flops" in b), None)
        if base and "flops" in r:
            r["flops_vs_hept"] = base["flops"] / r["flops"]
            line = f"{r['model']} N={r['N']}: HEPT/model FLOPs {r['flops_vs_hept']:.2f}"
            if "latency_ms" in r and "latency_ms" in base:
                r["speed_vs_hept"] = base["latency_ms"] / r["latency_ms"]
                line += f", HEPT/model latency {r['speed_vs_hept']:.2f}"
            print(line)
    if args.out:
        from partx.atomic import atomic_write

        meta = {"command": "python analysis/pileup_cost.py " + shlex.join(argv), "threads": torch.get_num_threads()}
        print(atomic_write(args.out, json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
