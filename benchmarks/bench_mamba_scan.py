"""Forward time of the bidirectional Mamba mixer per scan backend, against the SDPA attention mixer
(with a (B, H, N, N) bias, as ParT) measured in the same run. CPU, 2 threads.

    python benchmarks/bench_mamba_scan.py [--reps 7] [--threads 2]

Cases are interleaved round-robin and the minimum over repetitions is reported, so load from other
processes on a shared machine inflates every case alike instead of biasing the ratios.
"""

from __future__ import annotations

import argparse
import time

import torch

from partx.nn.mixers import build_mixer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ref", action="store_true", help="skip the slow sequential reference")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    C, H = 128, 8
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, C={C}, H={H}, expand 2, d_state 16, forward only")
    for B, N in [(64, 128), (8, 1024)]:
        torch.manual_seed(0)
        x = torch.randn(B, N, C)
        mask = torch.ones(B, N, dtype=torch.bool)
        bias = torch.randn(B, H, N, N)
        cases = {"attention (sdpa + U)": build_mixer("sdpa", C, H).eval()}
        for backend in ["chunked", "mambapy"] + ([] if args.no_ref else ["ref"]):
            cases[f"mamba1 bi, {backend}"] = build_mixer("mamba", C, H, backend=backend).eval()
        cases["mamba2 bi, chunked"] = build_mixer("mamba2", C, H, backend="chunked").eval()
        best = {name: float("inf") for name in cases}
        with torch.inference_mode():
            for name, m in cases.items():  # warm-up
                m(x, mask, bias)
            for rep in range(args.reps):
                for name, m in cases.items():
                    if name.endswith("ref") and rep >= 2:
                        continue  # seconds per call at N=1024; two runs suffice
                    t0 = time.perf_counter()
                    m(x, mask, bias)
                    best[name] = min(best[name], time.perf_counter() - t0)
        base = best["attention (sdpa + U)"]
        print(f"\nB={B}, N={N}")
        print(f"  {'mixer':26s} {'ms':>9s} {'/ attention':>12s}")
        for name, t in best.items():
            print(f"  {name:26s} {t * 1e3:9.1f} {t / base:12.2f}")


if __name__ == "__main__":
    main()
