"""Latency measurement through ``torch.utils.benchmark`` (median, IQR, accelerator sync, adaptive stop).

``measure(fn, ...)`` wraps ``torch.utils.benchmark.Timer(...).adaptive_autorange``:

* warm-up: ``warmup`` untimed calls of ours (compilation, lazy init, autotuning), then the Timer's own
  block-size estimation, which also runs the statement untimed;
* blocks of ``number_per_run`` calls are timed until the IQR / median of the per-call block times is
  below ``threshold`` after at least ``min_run_time`` seconds and 4 blocks, or until ``max_run_time``
  seconds have been spent (at least one block always runs);
* the Timer's clock synchronises the accelerator before each reading (``torch.accelerator.synchronize``),
  so asynchronous CUDA launches are timed end to end;
* the Timer sets the intra-op thread count for the measurement; it defaults to 1, so the caller's
  ``torch.get_num_threads()`` is passed explicitly.

Statistics are the Measurement's median and quartiles of the per-call block times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch.utils import benchmark


@dataclass
class LatencyStats:
    median_s: float
    q25_s: float
    q75_s: float
    mean_s: float
    min_s: float
    repeats: int  # timed blocks
    calls_per_repeat: int  # calls per block (the Timer's number_per_run)
    warmup: int

    @property
    def iqr_s(self) -> float:
        return self.q75_s - self.q25_s

    def as_dict(self) -> dict:
        d = asdict(self)
        d["iqr_s"] = self.iqr_s
        return d


def from_measurement(m: benchmark.Measurement, warmup: int = 0) -> LatencyStats:
    """LatencyStats of a ``torch.utils.benchmark.Measurement`` (per-call times)."""
    q25, q75 = _quartiles(m.times)
    return LatencyStats(m.median, q25, q75, m.mean, min(m.times), len(m.times), m.number_per_run, warmup)


def _quartiles(times) -> tuple[float, float]:
    t = torch.tensor(times, dtype=torch.float64)
    return t.quantile(0.25).item(), t.quantile(0.75).item()  # as Measurement.iqr computes them


def measure(fn: Callable[[], object], warmup: int = 1, min_run_time: float = 0.2, max_run_time: float = 10.0,
            threshold: float = 0.1, threads: int | None = None) -> LatencyStats:
    """Time ``fn()`` (see the module docstring); ``threads`` defaults to ``torch.get_num_threads()``."""
    if warmup < 0 or min_run_time < 0 or max_run_time <= 0 or threshold <= 0:
        raise ValueError(f"need warmup >= 0, min_run_time >= 0, max_run_time > 0, threshold > 0; "
                         f"got {warmup}, {min_run_time}, {max_run_time}, {threshold}")
    for _ in range(warmup):
        fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads or torch.get_num_threads())
    m = timer.adaptive_autorange(threshold=threshold, min_run_time=min_run_time, max_run_time=max_run_time)
    return from_measurement(m, warmup)
