"""Benchmark and profile outputs: CSV, JSON, markdown tables and log-log plots, all written atomically.

Every writer writes to a temporary file in the target directory and renames it into place, so a reader
never sees a half-written file; each returns the path it wrote.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from partx.atomic import atomic_write  # noqa: F401  (re-exported for partx.perf users)
from partx.plotting import save_figure

ROW_COLUMNS = [
    "model", "N", "batch", "dtype", "params", "macs", "flops", "scan_flops", "latency_ms", "latency_iqr_ms",
    "throughput", "peak_mem_mb", "repeats", "warmup", "latency_ratio", "throughput_ratio", "macs_ratio",
    "mem_ratio", "params_ratio", "speedup_vs_fp32", "status",
]


def atomic_savefig(fig, path: str | os.PathLike, **kw) -> Path:
    return save_figure(fig, path, quiet=True, **kw)


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
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
        f"Inputs: {'files ' + cfg['data_files'] if cfg.get('data_files') else 'synthetic'}, fill = {cfg['fill']}; "
        f"repeats {cfg['repeats']} after {cfg['warmup']} warm-up calls (median; IQR = q75 - q25).",
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
        paths.append(atomic_savefig(fig, Path(out_dir) / f"{prefix}_b{b}_{dtype}.png", dpi=80))
        plt.close(fig)
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
