"""Roofline model: device peaks, a CPU microbenchmark, and memory- vs compute-bound classification.

An op with arithmetic intensity I = FLOPs / bytes moved is memory-bound on a device whose balance point
(ridge) is P / BW (peak FLOP/s over memory bandwidth) when I < P / BW, compute-bound otherwise.
Bytes moved are *estimated* as the sizes of the op's input and output tensors (each read or written
once): a lower bound for ops that re-read data, an over-estimate where inputs stay in cache.

The GPU entries are vendor peaks (dense bf16 tensor-core FLOP/s; fp32 CUDA-core peaks are much lower:
H100 SXM ~67 TFLOP/s fp32). The CPU entry is *measured at run time*: a large fp32 matmul for the
FLOP/s and a large tensor copy for the bandwidth, with the threads the benchmark uses. Every value can
be overridden (``--peak-flops`` / ``--peak-bw``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from partx.perf.timing import measure


@dataclass
class DevicePeak:
    name: str
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s
    source: str

    @property
    def balance(self) -> float:
        """Ridge point in FLOP/byte."""
        return self.peak_flops / self.bandwidth

    def as_dict(self) -> dict:
        return dict(asdict(self), balance_flop_per_byte=self.balance)


#: vendor peaks (dense bf16 tensor-core FLOP/s, HBM bandwidth)
DEVICE_PEAKS: dict[str, DevicePeak] = {
    "H100-SXM": DevicePeak("H100-SXM", 989e12, 3.35e12, "NVIDIA spec, dense bf16"),
    "H200": DevicePeak("H200", 989e12, 4.8e12, "NVIDIA spec, dense bf16"),
    "A100-SXM": DevicePeak("A100-SXM", 312e12, 2.0e12, "NVIDIA spec, dense bf16"),
}


def measure_cpu_peak(threads: int | None = None, n: int = 1024, copy_mb: int = 256, max_run_time: float = 2.0) -> DevicePeak:
    """Measured fp32 matmul FLOP/s and copy bandwidth (read + write bytes) on this CPU.

    Each is the fastest per-call block time of ``partx.perf.timing.measure`` (a peak, not a typical
    value), with ``threads`` intra-op threads (default: the current setting).
    """
    threads = threads or torch.get_num_threads()
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = measure(lambda: torch.mm(a, b), max_run_time=max_run_time, threads=threads).min_s
    src = torch.empty(copy_mb * 2**20 // 4)
    dst = torch.empty_like(src)
    best_c = measure(lambda: dst.copy_(src), max_run_time=max_run_time, threads=threads).min_s
    return DevicePeak("CPU (measured)", 2 * n**3 / best, 2 * src.numel() * 4 / best_c,
                      f"fp32 {n}^3 matmul + {copy_mb} MB copy, {threads} threads")


def device_peak(name: str | None, peak_flops: float | None = None, peak_bw: float | None = None,
                threads: int | None = None) -> DevicePeak:
    """Table entry (``name`` in DEVICE_PEAKS), or the measured CPU for None/"cpu"; overrides applied last."""
    if name in (None, "cpu", "CPU"):
        if peak_flops and peak_bw:
            base = DevicePeak("CPU (given)", peak_flops, peak_bw, "--peak-flops/--peak-bw")
        else:
            base = measure_cpu_peak(threads)
    elif name in DEVICE_PEAKS:
        base = DEVICE_PEAKS[name]
    else:
        raise ValueError(f"unknown device {name!r}; known: cpu, {', '.join(DEVICE_PEAKS)}")
    if peak_flops or peak_bw:
        base = DevicePeak(base.name, peak_flops or base.peak_flops, peak_bw or base.bandwidth, base.source + " (overridden)")
    return base


def gpu_peak_for(device_name: str) -> DevicePeak | None:
    """Match ``torch.cuda.get_device_name()`` to a table entry (None if unknown)."""
    low = device_name.lower()
    if "h200" in low:
        return DEVICE_PEAKS["H200"]
    if "h100" in low:
        return DEVICE_PEAKS["H100-SXM"]
    if "a100" in low:
        return DEVICE_PEAKS["A100-SXM"]
    return None


def classify(flops: float, bytes_moved: float, peak: DevicePeak) -> dict:
    """Arithmetic intensity, attainable FLOP/s (roofline) and the bound for one op."""
    intensity = flops / bytes_moved if bytes_moved > 0 else float("inf")
    attainable = min(peak.peak_flops, intensity * peak.bandwidth)
    return dict(
        intensity=intensity,
        attainable_flops=attainable,
        bound="compute-bound" if intensity >= peak.balance else "memory-bound",
    )
