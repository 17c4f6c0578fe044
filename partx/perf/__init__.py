"""Benchmarking and profiling of partx / weaver models (see docs/benchmarks.md).

One concept per module:
  inputs    synthetic or file-based model inputs from a weaver data config, any length N
  models    benchmark names -> networks/example_*.py, model construction for a length N
  flops     FlopCounterMode under the MATH SDPA backend (FLOPs = 2 x MACs), analytic helpers
  timing    torch.utils.benchmark adaptive autorange: median / IQR, accelerator sync, time budget
  memory    peak activation memory (CUDA max_allocated, CPU profiler allocator trace)
  roofline  device peaks (table + measured CPU), arithmetic intensity, memory/compute bound
  harness   the benchmark loop, ratios to a baseline, log-log slopes, crossover lengths
  profiler  torch.profiler per-op / per-module breakdown, Chrome trace, roofline per op
  report    CSV / JSON / markdown (tabulate) / PNG writers (partx.atomic)
The CLIs are analysis/benchmark.py and analysis/profile_model.py.
"""
