"""Forward time of the bidirectional Mamba mixer per scan backend, against the SDPA attention mixer
(with a (B, H, N, N) bias, as ParT) measured in the same run. CPU, 2 threads.

    python benchmarks/bench_mamba_scan.py [--max-seconds 5] [--threads 2]

Each case is timed by ``partx.perf.timing.measure`` (torch.utils.benchmark adaptive autorange: median
and IQR of per-call block times, at most --max-seconds per case). On a shared machine compare the
ratios, and rerun when an IQR is large.
"""

from __future__ import annotations

import argparse

import torch

from partx.nn.mixers import build_mixer
from partx.perf.report import markdown_table
from partx.perf.timing import measure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-seconds", type=float, default=5.0, help="timed seconds per case at most")
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
        stats = {}
        with torch.inference_mode():
            for name, m in cases.items():
                stats[name] = measure(lambda m=m: m(x, mask, bias), max_run_time=args.max_seconds)
        base = stats["attention (sdpa + U)"].median_s
        rows = [[name, f"{s.median_s * 1e3:.1f}", f"{s.iqr_s * 1e3:.1f}", f"{s.median_s / base:.2f}"] for name, s in stats.items()]
        print(f"\nB={B}, N={N}\n" + markdown_table(["mixer", "median ms", "IQR ms", "/ attention"], rows))


if __name__ == "__main__":
    main()
