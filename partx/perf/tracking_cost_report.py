"""Outputs of the tracking cost study: CSV, JSON, markdown table and log-log plots vs number of hits.

Files (in the --out folder): ``tracking_cost.csv``, ``tracking_cost.json``, ``tracking_cost.md``,
``tracking_cost_flops.png`` (FLOPs vs hits, the seed paper's Fig. 3), ``tracking_cost_throughput.png``
(hits/s vs hits, Fig. 4), ``tracking_cost_memory.png`` (peak memory vs hits). Written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from partx.atomic import atomic_write
from partx.perf.report import _f, markdown_table, write_csv, write_json
from partx.perf.tracking_cost import loglog_slope, paper_check

COLUMNS = [
    "model", "size", "N", "params", "flops", "flops_counted", "flops_scan", "flops_per_hit", "latency_ms",
    "latency_iqr_ms", "throughput", "peak_mem_mb", "flops_vs_hept", "throughput_vs_hept", "mem_vs_hept",
    "repeats", "first_forward_s", "device", "status",
]

_PLOTS = (
    ("flops", "FLOPs per event (forward)", "flops"),
    ("throughput", "throughput [hits/s]", "throughput"),
    ("memory", "peak activation memory [MB]", "peak_mem_mb"),
)


def cost_markdown(rows: list[dict], meta: dict, command: str | None = None) -> str:
    """Markdown: the command, the machine, one table row per (model, size, N), slopes, the paper check."""
    lines = ["# Tracking models: cost vs number of hits", ""]
    if command:
        lines += ["```", command, "```", ""]
    m = meta.get("machine", {})
    dev = meta.get("device", "cpu")
    where = m.get("gpu") if dev.startswith("cuda") else f"{m.get('cpu_model', 'CPU')}, {m.get('threads')} threads"
    lines += [f"Device: {dev} ({where}); torch {m.get('torch')}; batch 1 (one event), forward only, fp32; "
              f"inputs: {meta.get('inputs')}. FLOPs = 2 x MACs: FlopCounterMode (matmuls, HEPT's block attention) "
              f"+ Mamba scans analytically ({meta.get('scan_flops_per_element')} x B x L x d_inner x d_state per scan). "
              "Ratios are to HEPT of the same size and N in this run.", ""]
    headers = ["model", "N", "params", "GFLOP", "scan GFLOP", "FLOPs/hit", "ms", "hits/s", "peak MB",
               "HEPT/model FLOPs", "model/HEPT hits/s", "model/HEPT mem", "status"]
    body = []
    for r in rows:
        ok = r.get("status") == "ok"
        body.append([
            f"{r['model']}-{r['size']}", r["N"], f"{r['params']:,}",
            _f(r.get("flops", math.nan) / 1e9) if ok else "–", _f(r.get("flops_scan", math.nan) / 1e9) if ok else "–",
            _f(r.get("flops_per_hit"), ".4g"), _f(r.get("latency_ms"), ".4g"), _f(r.get("throughput"), ".4g"),
            _f(r.get("peak_mem_mb"), ".4g"), _f(r.get("flops_vs_hept"), ".3g"), _f(r.get("throughput_vs_hept"), ".3g"),
            _f(r.get("mem_vs_hept"), ".3g"), r.get("status", ""),
        ])
    lines += [markdown_table(headers, body), ""]
    slopes = []
    for model, size in dict.fromkeys((r["model"], r["size"]) for r in rows):
        s = [loglog_slope(rows, model, size, k) for k in ("flops", "latency_ms", "peak_mem_mb")]
        if any(v is not None for v in s):
            slopes.append([f"{model}-{size}"] + [_f(v, ".2f") for v in s])
    if slopes:
        lines += ["Log-log slopes vs N (1 = linear):", "",
                  markdown_table(["model", "FLOPs", "latency", "peak memory"], slopes), ""]
    lines += [paper_check(rows), ""]
    return "\n".join(lines)


def cost_plots(rows: list[dict], out_dir: str | os.PathLike, title: str = "", prefix: str = "tracking_cost") -> list[Path]:
    """Three log-log PNGs (FLOPs, throughput, memory vs hits), one line per (model, size)."""
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    colors = {"HEPT": "tab:blue", "Mamba": "tab:gray", "MambaA": "tab:orange", "MambaB": "tab:green"}
    styles = {"S": ("-", "o"), "M": ("--", "s"), "L": (":", "D")}
    paths = []
    for stem, ylabel, key in _PLOTS:
        hep_style()
        fig, ax = plt.subplots(figsize=(8, 6))
        drawn = 0
        for model, size in dict.fromkeys((r["model"], r["size"]) for r in rows):
            pts = sorted((r["N"], r[key]) for r in rows if r["model"] == model and r["size"] == size
                         and r.get("status") == "ok" and r.get(key, 0) > 0)
            if not pts:
                continue
            ls, mk = styles[size]
            xs, ys = zip(*pts)
            ax.plot(xs, ys, ls, marker=mk, color=colors.get(model), label=f"{model}-{size}")
            drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of hits")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=12)
        if title:
            ax.set_title(title, fontsize=12)
        paths.append(save_figure(fig, Path(out_dir) / f"{prefix}_{stem}.png", dpi=90, quiet=True))
    return paths


def write_cost(rows: list[dict], meta: dict, out_dir: str | os.PathLike, command: str | None = None) -> list[Path]:
    """CSV, JSON, markdown and the plots into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    m = meta.get("machine", {})
    dev = meta.get("device", "cpu")
    title = f"{dev}: {m.get('gpu') if dev.startswith('cuda') else m.get('cpu_model', '')}, batch 1, forward"
    paths = [
        write_csv(out / "tracking_cost.csv", rows, COLUMNS),
        write_json(out / "tracking_cost.json", dict(meta, command=command, rows=rows)),
        atomic_write(out / "tracking_cost.md", cost_markdown(rows, meta, command)),
    ]
    return paths + cost_plots(rows, out, title)
