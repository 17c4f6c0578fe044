"""Peak memory of one forward pass, on CUDA and on CPU.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the memory allocated
  before the call: the peak of live tensor bytes the forward added (activations, workspace), excluding
  the weights and inputs already resident. (Code path untested in the session that wrote it: no GPU.)
* CPU: the same quantity reconstructed from ``torch.profiler`` memory events (``profile_memory=True``):
  each op's self allocation (bytes allocated minus freed inside that op) is placed at the op's start and
  each later free (the profiler's ``[memory]`` events) at its time; the running sum's maximum is the
  peak of live tensor bytes allocated by the forward. It measures the CPU tensor allocator, not the
  process RSS (glibc keeps freed pages, so RSS deltas after warm-up are ~0 and unusable), and a
  temporary freed inside the op that made it is netted out (so it is a slight lower bound). The
  profiler adds overhead, so memory is measured in its own forward, never in a timed one.
"""

from __future__ import annotations

from typing import Callable

import torch


def peak_memory_bytes(fn: Callable[[], object], device="cpu") -> int:
    """Peak bytes of tensors allocated (and still live at the peak) during one call of ``fn``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        fn()
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev) - base)
    return cpu_peak_from_profiler(fn)


def cpu_peak_from_profiler(fn: Callable[[], object]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
        fn()
    return peak_from_events(prof.events())


def peak_from_events(events) -> int:
    """Max of the running sum of self CPU memory over profiler events in time order."""
    deltas = []
    for ev in events:
        delta = getattr(ev, "self_cpu_memory_usage", 0) or 0
        if delta:
            deltas.append((ev.time_range.start, delta))
    deltas.sort(key=lambda t: t[0])
    cur = peak = 0
    for _, d in deltas:
        cur += d
        peak = max(peak, cur)
    return int(peak)
