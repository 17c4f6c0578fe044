"""LocalParT against ParT's ways of computing U, timed interleaved in one process (CPU forward, eval mode).

    python benchmarks/bench_local_attention.py --threads 2 --rounds 7 --out benchmarks/cpu --stem local_attention
    python benchmarks/bench_local_attention.py --threads 2 --compile ...   # also ParT compile_model + torch.compile

Variants (all built by their registry network file, ``get_model`` as weaver calls it, synthetic JetClass-like
jets of ``partx.perf.inputs`` at N = 128, ``--fill`` 0.4 and full, batch 1 and 64):
  * ``ParT``: the registry default = weaver's ``sparse_eval`` at inference (U only for real pairs of the
    lower triangle, then scattered into the dense (B, H, N, N) U); the baseline of every ratio;
  * ``ParT dense U``: ``pair_embed_sparse_eval=(False, False)``, weaver's dense path (lower triangle of
    every pair, padding included);
  * ``ParT compile_model`` (``--compile``): ``compile_model=True`` (weaver's dense-in-training /
    sparse-at-inference and length rounded to 32) plus ``torch.compile`` as weaver's ``--compile-model``;
    compile time reported separately;
  * ``ParT-plain`` (no U), ``LocalParT`` at each ``--ks``.
Timing: after 2 warm-up calls per (variant, config), ``--rounds`` rounds; in each round every variant (order
rotated per round) runs a block of calls lasting >= ``--block-seconds``; latency = median over rounds of the
per-call time. Ratios = median over rounds of (ParT's time / the variant's time) in the same round: paired, so
slow phases of a shared machine cancel.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partx.atomic import atomic_dir  # noqa: E402
from partx.cli import ArgumentParser, csv_list, positive_int, run_main  # noqa: E402
from partx.perf.harness import load_data_config, machine_info  # noqa: E402
from partx.perf.inputs import as_forward_args, synthetic_inputs  # noqa: E402
from partx.perf.models import build_model, resolve_model  # noqa: E402
from partx.perf.report import markdown_table, write_csv, write_json  # noqa: E402

BASELINE = "ParT"


def variants(ks: list[int], compile_: bool) -> list[tuple[str, str, dict, bool]]:
    """(label, registry name, get_model overrides, torch.compile it)."""
    out = [(BASELINE, "ParT", {}, False),
           ("ParT dense U", "ParT", {"pair_embed_sparse_eval": (False, False)}, False)]
    if compile_:
        out.append(("ParT compile_model", "ParT", {"compile_model": True}, True))
    out.append(("ParT-plain", "ParT-plain", {}, False))
    out += [(f"LocalParT k={k}", "LocalParT", {"mixer_options": {"k": k}}, False) for k in ks]
    return out


def _time_block(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    dc = load_data_config(args.data_config)
    specs = variants(args.ks, args.compile)
    models, compile_s = {}, {}
    for label, name, overrides, comp in specs:
        model = build_model(resolve_model(name, overrides=overrides), dc, args.length)
        models[label] = torch.compile(model) if comp else model
    rows = []
    for fill in args.fills:
        for B in args.batch_sizes:
            inputs = as_forward_args(synthetic_inputs(dc, args.length, B, fill=fill, seed=args.seed), dc.input_names)
            n_real = inputs[-1][:, 0].sum(1)
            fns, calls = {}, {}
            for label, *_ in specs:
                def fn(m=models[label]):
                    with torch.no_grad():
                        return m(*inputs)
                t0 = time.perf_counter()
                fn()  # first call: compilation for the compiled variant
                if label.endswith("compile_model"):
                    compile_s[f"fill={fill} B={B}"] = time.perf_counter() - t0
                t = _time_block(fn, 1)
                fns[label], calls[label] = fn, max(1, math.ceil(args.block_seconds / max(t, 1e-6)))
                print(f"fill={fill} B={B} {label}: warm call {t * 1e3:.1f} ms, {calls[label]} calls per block", flush=True)
            times = {label: [] for label in fns}
            for r in range(args.rounds):
                order = list(fns)[r % len(fns):] + list(fns)[: r % len(fns)]
                for label in order:
                    times[label].append(_time_block(fns[label], calls[label]))
            base = times[BASELINE]
            for label, ts in times.items():
                med = statistics.median(ts)
                q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [med, med, med]
                ratio = statistics.median([b / t for b, t in zip(base, ts)])
                rows.append(dict(model=label, N=args.length, fill=fill, batch=B, mean_real=float(n_real.mean()),
                                 max_real=int(n_real.max()), latency_ms=med * 1e3, latency_iqr_ms=(q[2] - q[0]) * 1e3,
                                 rounds=len(ts), calls_per_round=calls[label], throughput=B / med,
                                 throughput_vs_ParT=ratio))
                print(f"  {label:22s} {med * 1e3:9.2f} ms  x{ratio:.2f} vs ParT", flush=True)
    machine = machine_info("cpu", args.threads)
    machine["loadavg_1m_after"] = os.getloadavg()[0]
    return dict(rows=rows, compile_seconds=compile_s, machine=machine, config=vars(args))


def markdown(result: dict, command: str) -> str:
    m = result["machine"]
    head = [f"Command: `{command}`", "",
            f"Machine: {m['cpu_model']}, {m['cpu_count']} logical CPUs, {m['threads']} threads, torch {m['torch']}; "
            f"load average {m['loadavg_1m']:.1f} at the end (shared machine: compare the paired ratios).", ""]
    rows = [[r["model"], r["fill"], r["batch"], f"{r['mean_real']:.0f}", f"{r['latency_ms']:.1f}",
             f"{r['latency_iqr_ms']:.1f}", f"{r['throughput']:.1f}", f"{r['throughput_vs_ParT']:.2f}"]
            for r in result["rows"]]
    table = markdown_table(["model", "fill", "batch", "mean real", "latency ms", "IQR ms", "jets/s", "x ParT throughput"],
                           rows)
    comp = "".join(f"\ntorch.compile time (first call), {k}: {v:.0f} s" for k, v in result["compile_seconds"].items())
    return "\n".join(head) + table + "\n" + comp + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="bench_local_attention.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", type=lambda s: [positive_int(v) for v in csv_list(s)], default=[8, 16, 32])
    p.add_argument("--fills", type=csv_list, default=["0.4", "full"])
    p.add_argument("--batch-sizes", type=lambda s: [positive_int(v) for v in csv_list(s)], default=[1, 64])
    p.add_argument("--length", type=positive_int, default=128)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--rounds", type=positive_int, default=7)
    p.add_argument("--block-seconds", type=float, default=0.3, help="timed seconds per block of calls (at least)")
    p.add_argument("--compile", action="store_true", help="also ParT compile_model + torch.compile")
    p.add_argument("--data-config", default="data/JetClass/JetClass_full.yaml")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/cpu")
    p.add_argument("--stem", default="local_attention")
    return p


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.fills = [f if f == "full" else float(f) for f in args.fills]
    command = "python benchmarks/bench_local_attention.py " + " ".join(shlex.quote(a) for a in argv)
    result = run(args)
    result["command"] = command
    out = Path(args.out)
    with atomic_dir(out, merge=True) as stage:
        write_json(stage / f"{args.stem}.json", result)
        write_csv(stage / f"{args.stem}.csv", result["rows"], list(result["rows"][0]))
        (stage / f"{args.stem}.md").write_text(markdown(result, command))
    for ext in ("md", "json", "csv"):
        print(out / f"{args.stem}.{ext}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
