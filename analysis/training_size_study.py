#!/usr/bin/env python3
"""Training-set-size study: ParT vs PFN (or any models) trained on the same data with the same budget.

    python analysis/training_size_study.py                      # the defaults below (docs/training_size_study.md)
    python analysis/training_size_study.py --data 200=datasets/JetClass_study_200 --data 800=datasets/JetClass \\
        --data 1600=datasets/JetClass,datasets/JetClass_study_800 --eval-data datasets/JetClass \\
        --models ParT-demo,PFN --epochs 3 --out output/study [--model-opts 'ParT-demo=-o num_layers 2']

``--data SIZE=DIR[,DIR...]`` gives the training files of one size (jets per class): the train_100M
files of those directories together must hold exactly SIZE jets of every class. Every run is validated
and tested on the val_5M / test_20M of ``--eval-data``. Models are partx.registry names (``ParT-demo``
is the CPU-sized ParT of ``make demo``); ``--model-opts NAME=OPTS`` adds weaver options after the
registry's (a key given again wins). Finished (model, size) runs are skipped;
``--collect`` trains nothing and tabulates the finished runs of the grid.
Outputs in --out: results.{csv,json,md}, training_size_study.png, runs/<model>_n<size>/ (weaver logs,
checkpoints, predictions, metrics.json), views/n<size>/ (the symlinked dataset views).
Exit status: 0 done, 1 a run failed, 2 bad arguments or inputs (one ERROR line, partx.cli; checked
before any training), 130 interrupted (Ctrl-C stops the running training; a re-run trains the
unfinished run again and skips the finished ones).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from partx import registry
from partx.cli import ArgumentParser, run_main
from partx.studies.training_size import (
    DEFAULT_MODELS, REPO, RunFailed, StudyConfig, run_study, validate, write_outputs,
)

DEFAULT_DATA = {
    200: [REPO / "datasets/JetClass_study_200"],                                 # --seed 2
    800: [REPO / "datasets/JetClass"],                                           # small preset, seed 0
    1600: [REPO / "datasets/JetClass", REPO / "datasets/JetClass_study_800"],    # + 800 with --seed 1
}
DEFAULT_EVAL = REPO / "datasets/JetClass"


def _data_spec(text: str) -> tuple[int, list[Path]]:
    size, sep, dirs = text.partition("=")
    if not sep or not dirs:
        raise argparse.ArgumentTypeError(f"expected SIZE=DIR[,DIR...], got {text!r}")
    try:
        n = int(size)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {size!r} is not an integer (jets per class)") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"training-set size must be >= 1 jet per class, got {n}")
    return n, [Path(d) for d in dirs.split(",") if d]


def _model_opt(text: str) -> tuple[str, str]:
    name, sep, opts = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=OPTIONS, got {text!r}")
    return name, opts


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="training_size_study.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", type=_data_spec, action="append", metavar="SIZE=DIR[,DIR...]",
                   help="training data of one size (repeat); default: " +
                   "; ".join(f"{k}={','.join(str(d.relative_to(REPO)) for d in v)}" for k, v in DEFAULT_DATA.items()))
    p.add_argument("--eval-data", type=Path, default=DEFAULT_EVAL,
                   help="dataset whose val_5M/test_20M every run uses (default: %(default)s)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated, from {', '.join(registry.names('jetclass'))} (default: %(default)s)")
    p.add_argument("--model-opts", type=_model_opt, action="append", default=[], metavar="NAME=OPTS",
                   help="extra weaver options for a model, e.g. 'ParT-demo=-o num_layers 1 -o num_heads 2'")
    p.add_argument("--repeats", type=_positive, default=1,
                   help="independent trainings per (model, size) (weaver does not seed); tables give mean ± std")
    p.add_argument("--epochs", type=_positive, default=3, help="full passes over each training set (default: 3, as in docs/training_size_study.md)")
    p.add_argument("--batch-size", type=_positive, default=128)
    p.add_argument("--features", choices=["kin", "kinpid", "full"], default="full")
    p.add_argument("--out", type=Path, default=REPO / "output/study")
    p.add_argument("--title", default="", help="plot title")
    p.add_argument("--check", action="store_true", help="validate the inputs and print the plan; train nothing")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: tabulate and plot the finished runs of the grid (missing ones reported)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    data: dict[int, list[Path]] = {}
    for size, dirs in args.data or DEFAULT_DATA.items():
        if size in data:
            p.error(f"size {size} given twice")
        data[size] = dirs
    opts: dict[str, str] = {}
    for name, o in args.model_opts:
        opts[name] = o
    cfg = StudyConfig(data=data, eval_dir=args.eval_data, out_dir=args.out,
                      models=[m.strip() for m in args.models.split(",") if m.strip()], model_opts=opts,
                      epochs=args.epochs, features=args.features, batch_size=args.batch_size, title=args.title,
                      repeats=args.repeats)
    specs, sets, ev = validate(cfg)  # StudyError: a partx.cli.UserError, one line and exit 2
    if args.check:
        print(f"eval: {ev.dir} ({ev.n_val} val / {ev.n_test} test jets)")
        for sd in sets:
            print(f"size {sd.size}: {sd.n_train} train jets from {', '.join(map(str, sd.dirs))}")
        for s in specs:
            print(f"model {s.name}: train_JetClass.sh {s.name} {args.features} {shlex.join(s.opts)} (options: {s.options})")
        return 0
    try:
        records = run_study(cfg, quiet=args.quiet, train=not args.collect)
    except RunFailed as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    paths = write_outputs(records, args.out, args.title, plot=False)
    print(open(paths["md"]).read(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
