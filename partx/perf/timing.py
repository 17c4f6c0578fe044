"""Latency measurement: warm-up, repeats, robust statistics; CUDA-aware.

CPU: ``time.perf_counter`` around each call. CUDA: one pair of CUDA events per call, with
``torch.cuda.synchronize()`` before the first event and after the last, so asynchronous kernel launches
are timed on the device (code path written for CUDA, untested in the session that wrote it: no GPU).
Statistics are the median and the inter-quartile range (IQR = q75 - q25) over the repeats; with few
repeats (CPU, large batches) the IQR is a rough spread only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class LatencyStats:
    median_s: float
    q25_s: float
    q75_s: float
    mean_s: float
    min_s: float
    repeats: int
    warmup: int

    @property
    def iqr_s(self) -> float:
        return self.q75_s - self.q25_s

    def as_dict(self) -> dict:
        d = asdict(self)
        d["iqr_s"] = self.iqr_s
        return d


def summarize(samples_s, warmup: int = 0) -> LatencyStats:
    a = np.asarray(samples_s, dtype=float)
    if a.size == 0:
        raise ValueError("no timing samples")
    q25, med, q75 = np.percentile(a, [25, 50, 75])
    return LatencyStats(float(med), float(q25), float(q75), float(a.mean()), float(a.min()), int(a.size), int(warmup))


def time_fn(fn: Callable[[], object], repeats: int = 20, warmup: int = 5, device="cpu",
            max_seconds: float | None = None) -> LatencyStats:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; returns LatencyStats.

    ``max_seconds``: stop adding repeats once the timed loop has used this long (at least 3 repeats are
    kept when ``repeats >= 3``); the number actually run is in ``LatencyStats.repeats``.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    is_cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    samples = []
    if is_cuda:
        torch.cuda.synchronize(device)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        t0 = time.perf_counter()
        n = 0
        for i in range(repeats):
            starts[i].record()
            fn()
            ends[i].record()
            n += 1
            if max_seconds is not None and n >= min(3, repeats) and time.perf_counter() - t0 > max_seconds:
                torch.cuda.synchronize(device)
                if time.perf_counter() - t0 > max_seconds:
                    break
        torch.cuda.synchronize(device)
        samples = [starts[i].elapsed_time(ends[i]) / 1e3 for i in range(n)]
    else:
        t0 = time.perf_counter()
        for i in range(repeats):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
            if max_seconds is not None and len(samples) >= min(3, repeats) and time.perf_counter() - t0 > max_seconds:
                break
    return summarize(samples, warmup)
