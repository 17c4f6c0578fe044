"""Model profiler: per-op and per-module time / memory / FLOPs, a Chrome trace, and a roofline verdict.

``profile_model(model, args, ...) -> ProfileResult`` runs ``torch.profiler`` (CPU, plus CUDA when the
inputs are on a GPU) with ``record_shapes``, ``profile_memory`` and ``with_flops`` over a few forward
passes after warm-up, with one ``record_function`` range per top-level module (embedding, pair
embedding, each particle block, each class block, head) so the time splits by module.

* Per op (grouped by op name and input shapes): self time, calls, self memory, FLOPs (the profiler's
  formulas for mm/addmm/bmm/conv; an analytic one for SDPA kernels, which the profiler leaves at 0),
  estimated bytes moved (input tensor sizes + an output of the size of the largest input, fp32 unless
  the shapes say otherwise: a rough estimate), arithmetic intensity, and memory- vs compute-bound vs the
  device balance point (``partx.perf.roofline``). Ops without a FLOP formula (element-wise, copies,
  norms, softmax, gathers) get bound "n/a" in the table; their intensity is O(1) FLOP per 4-12 bytes,
  i.e. memory-bound on every device here.
* Per module: inclusive CPU time from the module ranges, FLOPs from ``FlopCounterMode`` (MATH SDPA).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from partx.atomic import atomic_path
from partx.perf import flops as _flops
from partx.perf.roofline import DevicePeak, classify


def module_groups(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Non-overlapping top-level modules: descend through single-child wrappers, expand ModuleLists."""
    prefix, root = "", model
    while True:
        children = list(root.named_children())
        if len(children) == 1 and not isinstance(children[0][1], nn.ModuleList):
            prefix = f"{prefix}{children[0][0]}."
            root = children[0][1]
            continue
        break
    out = []
    for name, child in root.named_children():
        if isinstance(child, (nn.ModuleList, nn.Sequential)) and len(child) > 0 and name not in ("fc",):
            out += [(f"{prefix}{name}.{i}", m) for i, m in enumerate(child)]
        else:
            out.append((f"{prefix}{name}", child))
    return out


class _ModuleRanges:
    """Forward pre/post hooks opening a profiler ``record_function`` range per module."""

    TAG = "module::"

    def __init__(self, groups):
        self.handles, self.stack = [], {}
        for name, mod in groups:
            self.handles.append(mod.register_forward_pre_hook(self._pre(name)))
            self.handles.append(mod.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(mod, args):
            rf = torch.profiler.record_function(self.TAG + name)
            rf.__enter__()
            self.stack.setdefault(name, []).append(rf)
        return hook

    def _post(self, name):
        def hook(mod, args, out):
            self.stack[name].pop().__exit__(None, None, None)
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


_DTYPE_BYTES = {"float": 4, "c10::BFloat16": 2, "c10::Half": 2, "double": 8, "long int": 8, "int": 4, "bool": 1,
                "signed char": 1, "unsigned char": 1, "c10::qint8": 1, "c10::quint8": 1}


def _numel(shape) -> int:
    return math.prod(shape) if shape else 0


def estimate_bytes(input_shapes, input_types=None) -> int:
    """Bytes read + written by one call: every tensor input once, plus an output as large as the largest input."""
    sizes = []
    for i, shape in enumerate(input_shapes or []):
        if not isinstance(shape, (list, tuple)) or not shape or not all(isinstance(s, int) for s in shape):
            continue
        itemsize = 4
        if input_types and i < len(input_types):
            itemsize = _DTYPE_BYTES.get(input_types[i], 4)
        sizes.append(_numel(shape) * itemsize)
    if not sizes:
        return 0
    return sum(sizes) + max(sizes)


def sdpa_flops(input_shapes) -> int:
    """Analytic FLOPs of an SDPA kernel call from q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev)."""
    try:
        q, k, v = input_shapes[:3]
        *batch, L, E = q
        S, Ev = k[-2], v[-1]
        return 2 * math.prod(batch) * L * S * (E + Ev)
    except (ValueError, TypeError, IndexError):
        return 0


def conv_flops(input_shapes) -> int:
    """Analytic FLOPs of a convolution from input (B, Cin, *S) and weight (Cout, Cin/groups, *K), stride 1.

    The profiler has no formula for CPU ``_slow_conv2d_forward`` (ParT's 1x1 pair-embedding convolutions).
    """
    try:
        x, w = input_shapes[:2]
        if len(x) < 3 or len(w) != len(x):
            return 0
        out_spatial = [s - k + 1 for s, k in zip(x[2:], w[2:])]
        return 2 * x[0] * w[0] * math.prod(out_spatial) * math.prod(w[1:])
    except (ValueError, TypeError, IndexError):
        return 0


@dataclass
class ProfileResult:
    ops: list[dict]
    modules: list[dict]
    device: dict
    total_time_ms: float
    iterations: int
    trace_path: str | None = None
    extra: dict = field(default_factory=dict)


def profile_model(model: nn.Module, args: tuple, peak: DevicePeak, iterations: int = 3, warmup: int = 2,
                  trace_path: str | os.PathLike | None = None, top: int = 25) -> ProfileResult:
    from torch.profiler import ProfilerActivity, profile

    device = args[0].device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    groups = module_groups(model)
    with torch.no_grad():
        for _ in range(warmup):
            model(*args)
        ranges = _ModuleRanges(groups)
        try:
            with profile(activities=activities, record_shapes=True, profile_memory=True, with_flops=True) as prof:
                for _ in range(iterations):
                    model(*args)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
        finally:
            ranges.remove()
    if trace_path is not None:
        with atomic_path(trace_path) as tmp:
            prof.export_chrome_trace(str(tmp))

    use_cuda = device.type == "cuda"
    # ---- per op
    ops = []
    for evt in prof.key_averages(group_by_input_shape=True):
        if evt.key.startswith(_ModuleRanges.TAG) or evt.key.startswith("ProfilerStep"):
            continue
        self_us = (evt.self_device_time_total if use_cuda else evt.self_cpu_time_total)
        if self_us <= 0:
            continue
        shapes = list(evt.input_shapes or [])
        fl = int(evt.flops or 0)
        if fl == 0 and "scaled_dot_product" in evt.key:
            fl = sdpa_flops(shapes) * evt.count
        elif fl == 0 and "conv" in evt.key:
            fl = conv_flops(shapes) * evt.count
        nbytes = estimate_bytes(shapes) * evt.count
        row = dict(op=evt.key, input_shapes=str(shapes), calls=evt.count / iterations, self_time_ms=self_us / 1e3 / iterations,
                   self_mem_mb=(evt.self_device_memory_usage if use_cuda else evt.self_cpu_memory_usage) / 2**20 / iterations,
                   flops=fl / iterations, bytes=nbytes / iterations)
        if fl > 0 and nbytes > 0:
            c = classify(fl, nbytes, peak)
            row.update(intensity=c["intensity"], bound=c["bound"], achieved_flops=fl / (self_us / 1e6))
        else:
            row.update(intensity=None, bound="n/a", achieved_flops=None)
        ops.append(row)
    ops.sort(key=lambda r: -r["self_time_ms"])
    total_ms = sum(r["self_time_ms"] for r in ops)
    for r in ops:
        r["time_share"] = r["self_time_ms"] / total_ms if total_ms else 0.0
    # ---- per module: time from the ranges, FLOPs from FlopCounterMode
    times = {}
    for evt in prof.key_averages():
        if evt.key.startswith(_ModuleRanges.TAG):
            times[evt.key[len(_ModuleRanges.TAG):]] = (evt.cpu_time_total, evt.count, evt.cpu_memory_usage)
    try:
        _, per_mod = _flops.count_flops(model, args, per_module=True)
    except RuntimeError:
        per_mod = {}
    modules = []
    for name, mod in groups:
        t, n, mem = times.get(name, (0.0, 0, 0))
        mflops = next((v for k, v in per_mod.items() if k.endswith("." + name) or k == name), 0)
        modules.append(dict(module=name, type=type(mod).__name__, time_ms=t / 1e3 / iterations,
                            mem_mb=mem / 2**20 / iterations, flops=mflops,
                            params=sum(p.numel() for p in mod.parameters())))
    mod_total = sum(m["time_ms"] for m in modules)
    for m in modules:
        m["time_share"] = m["time_ms"] / mod_total if mod_total else 0.0
    return ProfileResult(ops[:top] if top else ops, modules, peak.as_dict(), total_ms, iterations,
                         str(trace_path) if trace_path else None, extra=dict(n_ops=len(ops)))


def breakdown_plot(result: ProfileResult, path, title: str = "", top: int = 15):
    """Horizontal bars: top ops by self time (coloured by roofline bound) and time per module."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from partx.plotting import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(15, 7))
    ops = result.ops[:top][::-1]
    colors = {"memory-bound": "tab:blue", "compute-bound": "tab:red", "n/a": "tab:gray"}
    axes[0].barh([o["op"][:40] for o in ops], [o["self_time_ms"] for o in ops], color=[colors[o["bound"]] for o in ops])
    axes[0].set_xlabel("self time per forward [ms]")
    axes[0].set_title("top ops (blue: memory-bound, red: compute-bound, grey: no FLOP formula)", fontsize=9)
    mods = result.modules[::-1]
    axes[1].barh([m["module"] for m in mods], [m["time_ms"] for m in mods], color="tab:green")
    axes[1].set_xlabel("time per forward [ms] (inclusive)")
    axes[1].set_title("per module", fontsize=9)
    for ax in axes:
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80, quiet=True)
