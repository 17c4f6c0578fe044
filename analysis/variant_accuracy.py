#!/usr/bin/env python3
"""ParT-variant accuracy protocol: every variant x several seeds on the same data, one shared test set,
paired differences to ParT with their standard errors (docs/variant_accuracy.md).

    python -m partx.datagen jetclass --out datasets/JetClass_protocol --jets-per-class 10000 --splits train,val --seed 21 --workers 16
    python -m partx.datagen jetclass --out datasets/JetClass_protocol --jets-per-class 40000 --splits test --seed 22 --workers 16
    python analysis/variant_accuracy.py --check                     # the plan, the sizing calculation, the benchmark command
    python analysis/variant_accuracy.py                             # train what is missing, then the tables and plots
    python analysis/variant_accuracy.py --collect --benchmark benchmarks/cpu/variant_accuracy.json   # tables + Pareto plot only

Defaults: every JetClass model of partx.registry but ParT-demo (--models to choose), ParT at the README demo
size and every variant whose network takes the ParT block options likewise (--size registered: as
registered), seeds 1,2,3 (PARTX_SEED of each weaver run), 10,000 training jets per class, 20 epochs,
batch 128, full features, validation and test on --eval-data (default: the --data directory).
Outputs in --out: results.{md,json,csv} (mean ± std per model, Δ to the baseline with its SE and the
2-SE verdict, the design and the achieved SE), variant_accuracy.png, pareto.png (with --benchmark),
runs/<model>_n<size>_s<seed>/ (weaver logs, checkpoints, predictions, metrics.json, test_correct.npz).
Finished runs are skipped on a re-run. Exit status: 0 done, 1 a run failed, 2 bad arguments or inputs
(one ERROR line, before any training), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from partx.cli import ArgumentParser, UserError, run_main
from partx.studies import variant_accuracy as va
from partx.studies.output import print_study_outputs
from partx.studies.training_size import REPO

DEFAULT_DATA = REPO / "datasets/JetClass_protocol"


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _data(text: str) -> tuple[int, list[Path]]:
    size, sep, dirs = text.partition("=")
    if not sep or not dirs or not size.isdigit() or int(size) < 1:
        raise argparse.ArgumentTypeError(f"expected SIZE=DIR[,DIR...] with SIZE >= 1 training jets per class, got {text!r}")
    return int(size), [Path(d) for d in dirs.split(",") if d]


def _model_opt(text: str) -> tuple[str, str]:
    name, sep, opts = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=OPTIONS, got {text!r}")
    return name, opts


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.005, got {v}")
    return v


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="variant_accuracy.py", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", type=_data, default=(10000, [DEFAULT_DATA]), metavar="SIZE=DIR[,DIR...]",
                   help="training jets per class and the directories holding exactly that many (default 10000=datasets/JetClass_protocol)")
    p.add_argument("--eval-data", type=Path, default=None, help="dataset whose val_5M / test_20M every run uses (default: the first --data dir)")
    p.add_argument("--models", default=None, help="comma-separated registry names (default: every JetClass model but ParT-demo)")
    p.add_argument("--baseline", default=va.DEFAULT_BASELINE)
    p.add_argument("--seeds", type=_ints, default=list(va.SEEDS))
    p.add_argument("--epochs", type=_positive, default=va.EPOCHS)
    p.add_argument("--batch-size", type=_positive, default=128)
    p.add_argument("--features", choices=["kin", "kinpid", "full"], default="full")
    p.add_argument("--size", choices=va.SIZES, default="demo", help="demo: ParT-block models at the README demo size (default)")
    p.add_argument("--model-opts", type=_model_opt, action="append", default=[], metavar="NAME=OPTS",
                   help="more weaver options for one model, after the sizing ones")
    p.add_argument("--dataopts", default=va.DATAOPTS, help="weaver data options of every run (default: %(default)s)")
    p.add_argument("--target-se", type=_fraction, default=va.TARGET_SE, help="SE of a difference to reach (default 0.005)")
    p.add_argument("--assumed-seed-std", type=float, default=va.ASSUMED_SEED_STD,
                   help="per-model seed-to-seed accuracy std assumed by the design (default 0.005)")
    p.add_argument("--benchmark", type=Path, default=None, help="analysis/benchmark.py JSON for the Pareto plot")
    p.add_argument("--bench-batch", type=_positive, default=None, help="benchmark batch size to plot (default: the largest)")
    p.add_argument("--out", type=Path, default=REPO / "output/variant_accuracy")
    p.add_argument("--title", default="")
    p.add_argument("--check", action="store_true", help="validate, print the plan, the design and the benchmark command; train nothing")
    p.add_argument("--collect", action="store_true", help="train nothing: tables and plots of the finished runs")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    size, dirs = args.data
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else va.default_models()
    cfg = va.ProtocolConfig(jets_per_class=size, train_dirs=dirs, eval_dir=args.eval_data or dirs[0], out_dir=args.out,
                            models=models, baseline=args.baseline, seeds=args.seeds, epochs=args.epochs,
                            batch_size=args.batch_size, features=args.features, size=args.size,
                            model_opts=dict(args.model_opts), dataopts=args.dataopts, title=args.title, target_se=args.target_se,
                            assumed_seed_std=args.assumed_seed_std)
    bench = None
    if args.benchmark is not None:
        try:
            bench = json.loads(args.benchmark.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"--benchmark {args.benchmark}: unreadable ({err})") from None
        va.benchmark_throughput(bench, args.bench_batch)  # bad benchmark JSON: one line, before training
    if args.check:
        plan = va.plan(cfg)
        d = va.design(cfg.assumed_seed_std, len(cfg.seeds), plan.eval_data.n_test, cfg.target_se)
        print(f"data: {plan.size_data.n_train} training jets ({size}/class) from {', '.join(map(str, dirs))}; "
              f"{plan.eval_data.n_val} validation and {plan.eval_data.n_test} test jets from {plan.eval_data.dir}")
        print(f"runs: {len(models)} models x seeds {cfg.seeds} x {cfg.epochs} epochs (batch {cfg.batch_size}, {cfg.features})")
        for spec in plan.specs:
            print(f"  {spec.name:<16} {plan.notes[spec.name]}: {spec.options or '(registry defaults)'}")
        print(f"design: SE of a difference = sqrt(2*{d['assumed_seed_std']:.4f}^2/{d['n_seeds']} + 2*0.25/{d['n_test']}) "
              f"= sqrt({d['seed']:.4f}^2 + {d['test']:.4f}^2) = {d['total']:.4f} (target {d['target']:.4f}: "
              f"{'met' if d['total'] <= d['target'] else 'NOT met'}); the target needs "
              + (f">= {d['seeds_needed']} seeds at this test size" if d["seeds_needed"] else "more test jets (the test term alone exceeds it)")
              + (f", or >= {d['test_jets_needed']} test jets at these seeds" if d["test_jets_needed"] else ", or more seeds"))
        print("benchmark for the Pareto plot:", va.benchmark_command(plan))
        return 0
    return print_study_outputs(lambda: va.run_protocol(cfg, quiet=args.quiet, train=not args.collect, bench=bench,
                                                       bench_batch=args.bench_batch))


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
