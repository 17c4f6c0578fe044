#!/usr/bin/env python3
"""Tracking-model comparison: HEPT, Mamba, Mamba-a, Mamba-b, same data, same budget, several seeds.

    python analysis/tracking_compare.py --datadir datasets/TrackML_mu40 --set 3k --seeds 1,2,3 \\
        --epochs 4 --samples-per-epoch 200 --out output/tracking_compare

Each (model, seed) is one ``./train_TrackML.sh MODEL SET -o seed SEED`` run with the given budget
(NUM_EPOCHS, SAMPLES_PER_EPOCH(_VAL), BATCH_SIZE), tested on the set's whole test split. Outputs in
--out: results.{json,md} (mean ± std over seeds, difference to HEPT ± its standard error, the seed
paper's ordering checked: a difference counts when it exceeds twice its standard error),
tracking_compare.png, runs/<model>_seed<seed>/ (weaver log, checkpoints, per-hit embeddings, metrics
JSON, efficiency plots). Finished runs are skipped on a re-run; ``--collect`` trains nothing.
Exit status: 0 done, 1 a run failed, 2 bad arguments or inputs, 130 interrupted. See
docs/tracking_models.md ("Trained comparison").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from partx import registry
from partx.cli import ArgumentParser, run_main
from partx.studies.output import print_study_outputs
from partx.studies.tracking_compare import DEFAULT_MODELS, CompareConfig, run_compare, validate
from partx.studies.training_size import REPO


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="tracking_compare.py", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--datadir", type=Path, required=True, help="TrackML dataset folder (holds processed/<set>/)")
    p.add_argument("--set", default="3k", help="TrackML set (default 3k: phi sectors)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"from {', '.join(registry.names('trackml'))}")
    p.add_argument("--seeds", type=_ints, default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--samples-per-epoch", type=int, default=200, help="training rows (events / sectors) per epoch")
    p.add_argument("--samples-per-epoch-val", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", default="S", help="model size S, M or L")
    p.add_argument("--out", type=Path, default=REPO / "output/tracking_compare")
    p.add_argument("--title", default="")
    p.add_argument("--collect", action="store_true", help="train nothing: tabulate the finished runs")
    p.add_argument("--quiet", action="store_true")
    args, extra = p.parse_known_args(argv)
    cfg = CompareConfig(datadir=args.datadir, out_dir=args.out, tracking_set=args.set,
                        models=[m.strip() for m in args.models.split(",") if m.strip()], seeds=args.seeds,
                        epochs=args.epochs, samples_per_epoch=args.samples_per_epoch,
                        samples_per_epoch_val=args.samples_per_epoch_val, batch_size=args.batch_size, size=args.size,
                        extra=tuple(extra))
    validate(cfg)
    return print_study_outputs(lambda: run_compare(cfg, quiet=args.quiet, train=not args.collect, title=args.title))


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
