"""Benchmark and profile outputs: CSV, JSON, markdown tables (``tabulate``, GitHub pipes) and log-log plots.

Every writer goes through ``partx.atomic`` (temporary file renamed into place), so a reader never sees a
half-written file; each returns the path it wrote. The CLIs also stage the whole output folder
(``partx.atomic.atomic_dir``), so a failed run publishes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from tabulate import tabulate

from partx.atomic import atomic_write
from partx.plotting import save_figure

ROW_COLUMNS = [
    "model", "N", "batch", "dtype", "params", "macs", "flops", "scan_flops", "latency_ms", "latency_iqr_ms",
    "throughput", "peak_mem_mb", "repeats", "calls_per_repeat", "warmup", "latency_ratio", "throughput_ratio", "macs_ratio",
    "mem_ratio", "params_ratio", "speedup_vs_fp32", "status",
]


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _clean(o):
    """NaN/inf -> None so the JSON is standard."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json(path, obj) -> Path:
    return atomic_write(path, json.dumps(_clean(obj), indent=1, default=_json_default) + "\n")


def write_csv(path, rows: list[dict], columns: list[str] | None = None) -> Path:
    cols = columns or ROW_COLUMNS
    extra = [k for r in rows for k in r if k not in cols]
    cols = cols + sorted(set(extra), key=extra.index)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt_csv(r.get(k)) for k in cols})
    return atomic_write(path, buf.getvalue())


def _fmt_csv(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return v


def _f(v, spec=".3g", none="–"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return format(v, spec)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """GitHub pipe table; cells are printed as given (no number re-formatting), "|" inside a cell escaped."""
    esc = lambda c: "" if c is None else str(c).replace("|", "\\|")  # noqa: E731
    return tabulate([[esc(c) for c in row] for row in rows], headers=[esc(h) for h in headers], tablefmt="github",
                    disable_numparse=True)


def benchmark_markdown(result: dict, command: str | None = None) -> str:
    base = result.get("baseline")
    m = result["machine"]
    cfg = result["config"]
    out = ["# partx benchmark", ""]
    if command:
        out += ["Command:", "", "```", command, "```", ""]
    out += [
        f"Machine: {m.get('cpu_model')} ({m.get('cpu_count')} logical CPUs), torch {m.get('torch')}, "
        f"{m.get('threads')} threads, device `{cfg['device']}`" + (f" ({m['gpu']})" if m.get("gpu") else "") + ".",
        f"Inputs: {'files ' + cfg['data_files'] if cfg.get('data_files') else 'synthetic'}, fill = {cfg['fill']}. "
        + (f"Every batch run as length-sorted sub-batches of {cfg['length_buckets']} jets (--length-buckets). "
           if cfg.get("length_buckets") else "") +
        f"Latency: torch.utils.benchmark adaptive autorange after {cfg['warmup']} warm-up call(s): blocks timed until "
        f"IQR/median < {cfg['iqr_threshold']} after {cfg['min_run_time']} s, at most {cfg['max_seconds']} s per "
        "configuration; median and IQR (q75 - q25) of the per-call block times.",
        "MACs per sample = FlopCounterMode FLOPs / 2 under the MATH SDPA backend (fp32 model; int8/bf16 rows reuse it). "
        "Peak memory: activations allocated by one forward (CPU: profiler allocator trace; CUDA: max_allocated).",
        "",
    ]
    hdr = ["model", "N", "batch", "dtype", "params", "MMAC/sample", "latency ms (IQR)", "samples/s", "peak MB"]
    if base:
        hdr += [f"latency / {base}", f"throughput / {base}", f"MACs / {base}", f"mem / {base}"]
    hdr += ["vs fp32", "status"]
    rows = []
    for r in result["rows"]:
        ok = r.get("status") == "ok"
        row = [r["model"], r["N"], r["batch"], r["dtype"], _f(r.get("params"), ",d") if r.get("params") else "–",
               _f((r.get("macs") or float("nan")) / 1e6, ".1f"),
               f"{_f(r.get('latency_ms'), '.2f')} ({_f(r.get('latency_iqr_ms'), '.2f')})" if ok else "–",
               _f(r.get("throughput"), ".1f"), _f(r.get("peak_mem_mb"), ".1f")]
        if base:
            row += [_f(r.get("latency_ratio"), ".2f"), _f(r.get("throughput_ratio"), ".2f"),
                    _f(r.get("macs_ratio"), ".2f"), _f(r.get("mem_ratio"), ".2f")]
        row += [_f(r.get("speedup_vs_fp32"), ".2f") + ("x" if r.get("speedup_vs_fp32") else ""), r.get("status", "")]
        rows.append(row)
    out += ["## Results", "", markdown_table(hdr, rows), ""]
    trims = {(r["model"], r["N"], r["dtype"]): r["ort_trim"] for r in result["rows"] if r.get("ort_trim")}
    if trims:
        out += ["ONNX Runtime padding trim (inputs cut to each batch's last real particle, as weaver's ParT does in torch):", ""]
        out += [f"- {m} N={n} {d}: {t}" for (m, n, d), t in trims.items()] + [""]
    if result.get("scaling"):
        out += ["## Scaling with N (log-log least-squares slopes)", ""]
        srows = [[s["model"], s["batch"], s["dtype"], ", ".join(map(str, s["lengths"])), _f(s.get("latency_slope"), ".2f"),
                  _f(s.get("memory_slope"), ".2f"), _f(s.get("macs_slope"), ".2f")] for s in result["scaling"]]
        out += [markdown_table(["model", "batch", "dtype", "N", "latency slope", "memory slope", "MACs slope"], srows), ""]
    if result.get("crossovers"):
        out += [f"## Crossover lengths vs {base} (latency)", "",
                "`fit`: intersection of the log-log latency fits inside the measured range; "
                "`interp`: first crossing between measured points, interpolated in log N.", ""]
        crows = [[c["model"], c["batch"], c["dtype"], _f(c.get("latency_ratio_first"), ".2f"), _f(c.get("latency_ratio_last"), ".2f"),
                  _f(c.get("crossover_fit"), ".0f"), _f(c.get("crossover_interp"), ".0f"), c["verdict"]] for c in result["crossovers"]]
        out += [markdown_table(["model", "batch", "dtype", f"lat/{base} @ N min", f"lat/{base} @ N max", "N* fit",
                                "N* interp", "verdict"], crows), ""]
    return "\n".join(out) + "\n"


def profile_markdown(meta: dict, res) -> str:
    """profile.md for a ``partx.perf.profiler.ProfileResult`` and the run's metadata (command, model, machine)."""
    d = res.device
    lines = [f"# Profile: {meta['model']} (N={meta['length']}, batch {meta['batch']}, {meta['dtype']})", "",
             "```", meta["command"], "```", "",
             f"Machine: {meta['machine'].get('cpu_model')}, {meta['machine'].get('threads')} threads, torch {meta['machine'].get('torch')}.",
             f"Roofline device: {d['name']} — peak {d['peak_flops'] / 1e9:.1f} GFLOP/s, bandwidth {d['bandwidth'] / 1e9:.1f} GB/s, "
             f"balance {d['balance_flop_per_byte']:.2f} FLOP/byte ({d['source']}).",
             f"Total op self time per forward: {res.total_time_ms:.1f} ms (mean of {res.iterations}).", "",
             "## Top ops (self time)", ""]
    rows = [[o["op"], o["input_shapes"][:60], _f(o["calls"], ".0f"), _f(o["self_time_ms"], ".2f"), _f(100 * o["time_share"], ".1f"),
             _f(o["flops"] / 1e6, ".1f"), _f(o["intensity"], ".1f"),
             _f(o["achieved_flops"] / 1e9 if o["achieved_flops"] else None, ".1f"), o["bound"]] for o in res.ops]
    lines += [markdown_table(["op", "input shapes", "calls", "ms", "%", "MFLOP", "FLOP/byte", "GFLOP/s", "bound"], rows), ""]
    lines += ["## Modules (inclusive time)", ""]
    rows = [[m["module"], m["type"], f"{m['params']:,}", _f(m["time_ms"], ".2f"), _f(100 * m["time_share"], ".1f"),
             _f(m["flops"] / 2e6, ".1f")] for m in res.modules]
    lines += [markdown_table(["module", "type", "params", "ms", "%", "MMAC"], rows), ""]
    return "\n".join(lines) + "\n"


def scaling_plots(result: dict, out_dir: str | os.PathLike, prefix: str = "scaling") -> list[Path]:
    """One PNG per (batch, dtype) with >= 2 lengths: latency and peak memory vs N, log-log, fitted slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    groups: dict[tuple, dict[str, list]] = {}
    for r in result["rows"]:
        if r.get("status") == "ok":
            groups.setdefault((r["batch"], r["dtype"]), {}).setdefault(r["model"], []).append(r)
    slopes = {(s["model"], s["batch"], s["dtype"]): s for s in result.get("scaling", [])}
    paths = []
    for (b, dtype), per_model in sorted(groups.items()):
        if not any(len({r["N"] for r in rs}) >= 2 for rs in per_model.values()):
            continue
        plt.style.use(mplhep.style.ROOT)
        fig, axes = plt.subplots(1, 2, figsize=(16, 7))
        colors = plt.get_cmap("tab10").colors
        markers = "osD^vP*Xh<>"
        for idx, (model, rs) in enumerate(per_model.items()):
            rs = sorted(rs, key=lambda r: r["N"])
            if len(rs) < 2:
                continue
            ns = [r["N"] for r in rs]
            s = slopes.get((model, b, dtype), {})
            for ax, key, sk in ((axes[0], "latency_ms", "latency"), (axes[1], "peak_mem_mb", "memory")):
                ys = [r.get(key) for r in rs]
                if any(y is None or not y > 0 for y in ys):
                    continue
                slope = s.get(f"{sk}_slope")
                line = ax.plot(ns, ys, "-", marker=markers[idx % len(markers)], color=colors[idx % len(colors)], label=f"{model} (slope {slope:.2f})" if slope is not None else model)[0]
                if slope is not None:
                    a = s[f"{sk}_intercept"]
                    ax.plot(ns, [math.exp(a) * n**slope for n in ns], ":", color=line.get_color(), lw=1)
        for ax, yl in ((axes[0], "median latency [ms]"), (axes[1], "peak activation memory [MB]")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("number of particles N")
            ax.set_ylabel(yl)
            ax.legend(fontsize=11, loc="upper left")
        m = result["machine"]
        fig.suptitle(f"batch {b}, {dtype}, {result['config']['device']} ({m.get('cpu_model', '')}, {m.get('threads')} threads)", fontsize=14)
        fig.tight_layout()
        paths.append(save_figure(fig, Path(out_dir) / f"{prefix}_b{b}_{dtype}.png", dpi=80, quiet=True))
    return paths


def write_benchmark(result: dict, out_dir: str | os.PathLike, command: str | None = None, stem: str = "benchmark") -> list[Path]:
    """results -> <stem>.csv, <stem>.json, <stem>.md and scaling PNGs in out_dir; returns the paths."""
    out = Path(out_dir)
    paths = [
        write_csv(out / f"{stem}.csv", result["rows"]),
        write_json(out / f"{stem}.json", dict(result, command=command)),
        atomic_write(out / f"{stem}.md", benchmark_markdown(result, command)),
    ]
    paths += scaling_plots(result, out, prefix=f"{stem}_scaling")
    return paths
