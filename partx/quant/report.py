"""Table (markdown + JSON) and plot of ``analysis/quantize.py``'s side-by-side comparison."""

from __future__ import annotations

import json
from pathlib import Path

from partx.atomic import atomic_write

__all__ = ["markdown_table", "write_outputs"]


def markdown_table(result: dict) -> str:
    rows = result["rows"]
    n = rows[0]["n_jets"]
    lines = [f"Model {result['model']} ({result['checkpoint']}), {n} test jets; latency: batch of "
             f"{result['bench_batch']} jets, {result['machine'].get('threads')} thread(s), {result['machine'].get('cpu_model')}.",
             "",
             "| method | accuracy ± SE | Δacc vs fp32 (paired SE) | flips (lost/gained) | AUC | max / mean \\|Δlogit\\| "
             "| latency ms | speed-up | throughput jets/s | size MB | size ratio | int8 layers |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['accuracy']:.4f} ± {r['accuracy_se']:.4f} | {r['acc_diff']:+.4f} ± {r['acc_diff_se']:.4f} "
            f"| {r['flips']} ({r['lost']}/{r['gained']}) | {r['auc']:.4f} | {r['max_dlogit']:.3g} / {r['mean_dlogit']:.3g} "
            f"| {r['latency_ms']:.1f} | {r['speedup']:.2f}x | {r['throughput']:.0f} | {r['size_bytes'] / 1e6:.2f} "
            f"| {r['size_ratio']:.2f} | {r['layers_int8']} |")
    rej = [k for k in rows[0]["rejection"]]
    if rej:
        lines += ["", "QCD rejection at the ParT paper's working points:", "",
                  "| method | " + " | ".join(k.replace("label_", "") for k in rej) + " |",
                  "|---|" + "---|" * len(rej)]
        for r in rows:
            lines.append(f"| {r['method']} | " + " | ".join(f"{r['rejection'].get(k, float('nan')):.1f}" for k in rej) + " |")
    ort = [r for r in rows if "speedup_vs_onnx" in r]
    if ort:
        lines += ["", "ONNX Runtime rows against ONNX Runtime fp32 (same run):", "",
                  "| method | speed-up vs onnx fp32 | size vs onnx fp32 |", "|---|---|---|"]
        lines += [f"| {r['method']} | {r['speedup_vs_onnx']:.2f}x | {r['size_ratio_vs_onnx']:.2f} |" for r in ort]
    for method, why in result.get("skipped", {}).items():
        lines.append(f"\n{method}: skipped ({why})")
    lines += ["", f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    rows = result["rows"]
    names = [r["method"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    x = range(len(rows))
    axes[0].bar(x, [r["speedup"] for r in rows], color="tab:blue")
    axes[0].axhline(1, color="k", lw=1)
    axes[0].set_ylabel("speed-up vs fp32 (same run)")
    axes[1].errorbar(x, [100 * r["acc_diff"] for r in rows], yerr=[100 * r["acc_diff_se"] for r in rows], fmt="o",
                     color="tab:red")
    axes[1].axhline(0, color="k", lw=1)
    axes[1].set_ylabel("accuracy - fp32 accuracy [%] (paired SE)")
    axes[2].bar(x, [r["size_ratio"] for r in rows], color="tab:green")
    axes[2].set_ylabel("size / fp32 size")
    for ax in axes:
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=12)
    fig.suptitle(f"{result['model']}: {rows[0]['n_jets']} test jets", fontsize=16)
    return save_figure(fig, path, quiet=True)


def write_outputs(result: dict, out: Path) -> list[Path]:
    """Write OUT/quantize.md, .json, .png (each atomically); return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = atomic_write(out / "quantize.md", markdown_table(result))
    js = atomic_write(out / "quantize.json", json.dumps(result, indent=2, default=str))
    png = plot(result, out / "quantize.png")
    return [md, js, png]
