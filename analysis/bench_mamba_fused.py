#!/usr/bin/env python
"""Fused vs two-call bidirectional Mamba on CPU: mixer-only and whole-model forward time, A/B interleaved.

    python analysis/bench_mamba_fused.py --threads 2 --rounds 7 [--compile] [--out benchmarks/cpu/mamba_fused.md]

Mixer-only: C = 128, 8 heads, expand 2, d_state 16 (the docs/mamba.md table), against the SDPA attention
mixer with a (B, H, N, N) bias; models: MambaParT (networks/example_MambaParT.py, defaults) against ParT
(example_ParticleTransformer.py), built for inference like analysis/benchmark.py. "two-call" and
"fused" are the *same* module with ``BiMambaMixer.fused`` toggled between calls, so the weights and
inputs are identical; outputs are checked equal (1e-4) before timing. Jets: multiplicity per jet ~
Normal(fill N, 0.06 N) clipped to [1, N] (the harness's ``--fill``), real particles first; every case
gets the batch trimmed to its longest jet, as the ParT skeleton trims. One round calls every case once
(batch 1: ``--calls-b1`` calls) in a fixed order; the report is the median over rounds of the per-call
time, and ratios of medians. On a shared machine only the ratios mean anything.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from partx import config  # noqa: E402
from partx.atomic import atomic_write  # noqa: E402
from partx.cli import ArgumentParser, positive_int, run_main  # noqa: E402
from partx.nn.mamba.mixer import BiMambaMixer  # noqa: E402
from partx.nn.mixers import build_mixer  # noqa: E402
from partx.perf.harness import load_data_config  # noqa: E402
from partx.perf.inputs import as_forward_args, synthetic_inputs  # noqa: E402
from partx.perf.models import build_model, resolve_model  # noqa: E402
from partx.perf.report import markdown_table  # noqa: E402


def jets(batch: int, n: int, fill: float, C: int, seed: int = 0):
    """x (B, n_max, C), mask (B, n_max): multiplicities ~ Normal(fill n, 0.06 n), trimmed to the longest."""
    g = torch.Generator().manual_seed(seed)
    if fill >= 1:
        mult = torch.full((batch,), n)
    else:
        mult = (torch.randn(batch, generator=g) * 0.06 * n + fill * n).round().clamp(1, n).long()
    n_max = int(mult.max())
    mask = torch.arange(n_max)[None] < mult[:, None]
    return torch.randn(batch, n_max, C, generator=g) * mask[..., None], mask


def set_fused(module: torch.nn.Module, on: bool) -> None:
    for m in module.modules():
        if isinstance(m, BiMambaMixer):
            m.fused = on


def interleaved(cases: dict, rounds: int, calls: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of every case; cases are (setup, fn) pairs run in turn, round by round."""
    times = {k: [] for k in cases}
    with torch.inference_mode():
        for setup, fn in cases.values():
            setup()
            for _ in range(max(warmup, calls)):
                fn()
        for _ in range(rounds):
            for name, (setup, fn) in cases.items():
                setup()
                t = time.perf_counter()
                for _ in range(calls):
                    fn()
                times[name].append((time.perf_counter() - t) / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def mixer_cases(B: int, N: int, fill: float, compile_: bool):
    C, H = 128, 8
    torch.manual_seed(0)
    x, mask = jets(B, N, fill, C)
    bias = torch.randn(B, H, x.shape[1], x.shape[1])
    attn = build_mixer("sdpa", C, H).eval()
    cases = {"attention (sdpa + U)": (lambda: None, lambda: attn(x, mask, bias))}
    for block in ("mamba1", "mamba2"):
        m = build_mixer("mamba" if block == "mamba1" else "mamba2", C, H, backend="chunked").eval()
        with torch.inference_mode():
            set_fused(m, False)
            ref = m(x, mask)
            set_fused(m, True)
            torch.testing.assert_close(m(x, mask), ref, atol=1e-4, rtol=1e-4)
        cases[f"{block} two-call"] = (lambda m=m: (set_fused(m, False), config.set_mamba_compile(False)), lambda m=m: m(x, mask))
        cases[f"{block} fused"] = (lambda m=m: (set_fused(m, True), config.set_mamba_compile(False)), lambda m=m: m(x, mask))
        if compile_ and block == "mamba1":
            cases[f"{block} fused + compile"] = (lambda m=m: (set_fused(m, True), config.set_mamba_compile(True)), lambda m=m: m(x, mask))
    return cases, "attention (sdpa + U)"


def model_cases(B: int, N: int, fill: float, compile_: bool):
    dc = load_data_config("data/JetClass/JetClass_full.yaml")
    args = as_forward_args(synthetic_inputs(dc, N, B, fill=fill, seed=0), dc.input_names)
    torch.manual_seed(0)
    part = build_model(resolve_model("ParT", overrides={"for_inference": True}), dc, N)
    mamba = build_model(resolve_model("MambaParT", overrides={"for_inference": True}), dc, N)
    with torch.inference_mode():
        set_fused(mamba, False)
        ref = mamba(*args)
        set_fused(mamba, True)
        torch.testing.assert_close(mamba(*args), ref, atol=1e-4, rtol=1e-4)
    cases = {
        "ParT": (lambda: None, lambda: part(*args)),
        "MambaParT two-call": (lambda: (set_fused(mamba, False), config.set_mamba_compile(False)), lambda: mamba(*args)),
        "MambaParT fused": (lambda: (set_fused(mamba, True), config.set_mamba_compile(False)), lambda: mamba(*args)),
    }
    if compile_:
        cases["MambaParT fused + compile"] = (lambda: (set_fused(mamba, True), config.set_mamba_compile(True)), lambda: mamba(*args))
    return cases, "ParT"


def main(argv=None) -> int:
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--rounds", type=positive_int, default=7)
    ap.add_argument("--calls-b1", type=positive_int, default=10, help="calls per round at batch 1")
    ap.add_argument("--configs", default="mixer:64:128:1,mixer:64:128:0.4,mixer:1:128:0.4,model:64:128:0.4,model:1:128:0.4",
                    help="comma-separated KIND:B:N:FILL, KIND = mixer or model")
    ap.add_argument("--compile", action="store_true", help="also time the torch.compile-d Mamba-1 block terms")
    ap.add_argument("--out", default=None, help="write the tables (markdown) here too")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, rounds {args.rounds}, command: "
             f"python analysis/bench_mamba_fused.py {' '.join(argv if argv is not None else sys.argv[1:])}"]
    print(lines[0], flush=True)
    for item in args.configs.split(","):
        kind, B, N, fill = item.split(":")
        B, N, fill = int(B), int(N), float(fill)
        cases, base = (mixer_cases if kind == "mixer" else model_cases)(B, N, fill, args.compile)
        if args.compile:
            setup, fn = next(case for name, case in cases.items() if "compile" in name)
            setup()
            t = time.perf_counter()
            with torch.inference_mode():
                fn()
            config.set_mamba_compile(False)
            print(f"first compiled call (compile included): {time.perf_counter() - t:.1f} s", flush=True)
        # warm-up: weaver's trimmer (ParT skeleton) settles after 5 calls
        med = interleaved(cases, args.rounds, args.calls_b1 if B == 1 else 1, warmup=6 if kind == "model" else 1)
        rows = []
        for name, s in med.items():
            pair = name.replace(" fused + compile", " two-call").replace(" fused", " two-call")
            speedup = f"{med[pair] / s:.2f}" if pair != name and pair in med else ""
            rows.append([name, f"{s * 1e3:.1f}", f"{s / med[base]:.2f}", speedup])
        table = f"\n{kind}, B={B}, N={N}, fill={fill}\n" + markdown_table(
            ["case", "median ms", f"/ {base}", "two-call / this"], rows)
        print(table, flush=True)
        lines.append(table)
        if args.out:  # rewritten after every configuration: a long run interrupted keeps what it measured
            atomic_write(Path(args.out), "\n".join(lines) + "\n")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
