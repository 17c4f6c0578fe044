#!/usr/bin/env python3
"""Jet-tagging metrics and ROC curves from weaver prediction files.

    python analysis/evaluate_jets.py training/JetClass/.../predict_output/pred_*.root [--plot roc.png] [--json metrics.json]

Prints accuracy, the AUC in the ParT paper's convention (macro one-vs-one; one-vs-rest beside it)
and each class's rejection of QCD at the paper's working points (Table 2);
the plot shows background rejection vs signal efficiency for every class against QCD.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from partx.atomic import atomic_write
from partx.cli import ArgumentParser, UserError, run_main, writable_file
from partx.metrics.jets import jet_metrics, roc_vs_background
from partx.metrics.predictions import PredictionFileError, load_weaver_predictions


def plot_rocs(scores, labels, names, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    fig, ax = plt.subplots(figsize=(8, 7))
    colors = plt.cm.tab10.colors  # ten distinct colours, dashed for the second half of the classes
    for i, (name, eff_s, rej_b) in enumerate(roc_vs_background(scores, labels, names)):
        ax.plot(eff_s, rej_b, label=name.replace("label_", ""), color=colors[i % 10], ls="-" if i < 5 else "--")
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency")
    ax.set_ylabel("QCD rejection (1 / background efficiency)")
    ax.set_title(title, fontsize=14)
    ax.legend(fontsize=11, ncol=2)
    return save_figure(fig, path)


def _main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="evaluate_jets.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="+", help="weaver --predict-output ROOT files (globs allowed)")
    parser.add_argument("--plot", type=Path, help="write the ROC curves here (PNG/PDF)")
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.add_argument("--title", default="", help="plot title")
    args = parser.parse_args(argv)
    if args.json is not None:
        writable_file(args.json, "metrics file")
    if args.plot is not None:
        from partx.plotting import plot_file

        plot_file(args.plot)
    try:
        scores, labels, names = load_weaver_predictions(args.predictions)
        metrics = jet_metrics(scores, labels, names)
    except (PredictionFileError, ValueError) as err:
        raise UserError(str(err)) from None
    print(metrics.table())
    if args.json:
        atomic_write(args.json, json.dumps(metrics.__dict__, indent=2))
        print(f"metrics written: {args.json}")
    if args.plot and metrics.n_background == 0:
        print("no ROC plot: no QCD jets to draw background rejection against")
    elif args.plot:
        plot_rocs(scores, labels, names, args.plot, args.title)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
