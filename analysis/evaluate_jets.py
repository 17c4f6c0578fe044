#!/usr/bin/env python3
"""Jet-tagging metrics and ROC curves from weaver prediction files.

    python analysis/evaluate_jets.py training/JetClass/.../predict_output/pred_*.root [--plot roc.png] [--json metrics.json]
    python analysis/evaluate_jets.py --checkpoint models/ParT_gen-small_full --data 'datasets/JetClass/Pythia/test_20M/*.root'

Prints accuracy, the AUC in the ParT paper's convention (macro one-vs-one; one-vs-rest beside it)
and each class's rejection of QCD at the paper's working points (Table 2);
the plot shows background rejection vs signal efficiency for every class against QCD.
With --checkpoint (a model card of models/, by path or name) the scores are computed here: the card's network,
options and data config, the files of --data through weaver's test-time pipeline; the accuracy is printed with
its binomial standard error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from partx.atomic import atomic_write
from partx.cli import ArgumentParser, UserError, positive_int, run_main, writable_file
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


def _run_checkpoint(checkpoint: str, data: list[str], jets_per_class: int | None):
    """(metrics, scores, labels, names) of a model card's checkpoint on JetClass-format files."""
    from partx.models_store.evaluate import evaluate_files
    from partx.models_store.loader import build, card_for, data_config_path
    from partx.perf.harness import load_data_config

    card = card_for(checkpoint)
    if card is None:
        raise UserError(f"--checkpoint {checkpoint} is not a model card (models/<name>, its name, or its .yaml); "
                        f"for a weaver checkpoint, predict with ./train_JetClass.sh ... --predict and pass the files")
    dc = load_data_config(str(data_config_path(card)))
    model = build(card, dc)
    try:
        return evaluate_files(model, dc, data, jets_per_class or 10**9)
    except ValueError as err:
        raise UserError(str(err)) from None


def _main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="evaluate_jets.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="*", help="weaver --predict-output ROOT files (globs allowed)")
    parser.add_argument("--checkpoint", default=None, help="a model card (models/<name> or its name): run it on --data")
    parser.add_argument("--data", action="append", default=[], help="JetClass-format ROOT files to run --checkpoint on "
                                                                    "(glob, repeatable; quote it)")
    parser.add_argument("--jets-per-class", type=positive_int, default=None, help="with --checkpoint: at most this many")
    parser.add_argument("--plot", type=Path, help="write the ROC curves here (PNG/PDF)")
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.add_argument("--title", default="", help="plot title")
    args = parser.parse_args(argv)
    if args.checkpoint is not None and (args.predictions or not args.data):
        raise UserError("--checkpoint runs a model on --data files: give --data, and no prediction files")
    if args.checkpoint is None and (args.data or not args.predictions):
        raise UserError("prediction files are required (or --checkpoint models/<name> with --data files)")
    if args.json is not None:
        writable_file(args.json, "metrics file")
    if args.plot is not None:
        from partx.plotting import plot_file

        plot_file(args.plot)
    if args.checkpoint is not None:
        metrics, scores, labels, names = _run_checkpoint(args.checkpoint, args.data, args.jets_per_class)
    else:
        try:
            scores, labels, names = load_weaver_predictions(args.predictions)
            metrics = jet_metrics(scores, labels, names)
        except (PredictionFileError, ValueError) as err:
            raise UserError(str(err)) from None
    print(metrics.table())
    if args.checkpoint is not None:
        from partx.models_store.evaluate import binomial_se

        print(f"accuracy {metrics.accuracy:.4f} ± {binomial_se(metrics.accuracy, metrics.n_jets):.4f} "
              f"(binomial standard error on {metrics.n_jets} jets)")
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
