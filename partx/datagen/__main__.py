"""Command line: ``python -m partx.datagen {jetclass,validate} ...``.

  python -m partx.datagen jetclass --out DIR [--jets-per-class N | --preset tiny|small] [--workers W]
         [--seed S] [--fast] [--no-detector] [--splits train,val,test] [--classes HToBB,TTBar,...]
  python -m partx.datagen validate DIR [--plot PATH.png]

Other generators (trackml, pileup) register their own sub-commands in their modules; this file only
wires the JetClass ones and stays import-light (Pythia / fastjet load only when generating).
"""

from __future__ import annotations

import argparse
import sys
import time


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _jetclass(args) -> int:
    from partx.datagen import jetclass

    n = args.jets_per_class
    if n is None:
        n = jetclass.PRESETS[args.preset or "tiny"]
    t0 = time.perf_counter()
    paths = jetclass.generate(
        args.out, n, seed=args.seed, workers=args.workers, splits=tuple(args.splits), classes=args.classes,
        detector=not args.no_detector, fast=args.fast, progress=not args.quiet,
    )
    sizes = jetclass.split_sizes(n)
    print(f"{len(paths)} files under {args.out}/Pythia ({', '.join(f'{s}: {sizes[s]} jets/class' for s in args.splits)}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _validate(args) -> int:
    from partx.datagen.validate import SchemaError, plot_summary, validate_dir

    try:
        summary = validate_dir(args.dir)
    except (SchemaError, FileNotFoundError) as exc:
        print(f"validation failed: {exc}", file=sys.stderr)
        return 2
    print(summary.table())
    if args.plot:
        print(f"plot written to {plot_summary(summary, args.plot)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m partx.datagen", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("jetclass", help="generate JetClass-format ROOT files (Pythia 8 + Delphes-lite + fastjet)")
    j.add_argument("--out", required=True, help="output directory (files go to OUT/Pythia/<split>/)")
    j.add_argument("--jets-per-class", type=int, default=None,
                   help="training jets per class (val/test get 25%% each); overrides --preset")
    j.add_argument("--preset", choices=("tiny", "small"), default=None,
                   help="tiny: 24 train jets/class (<1 min on 2 cores); small: 800 (README demo)")
    j.add_argument("--workers", type=int, default=1, help="parallel processes over (class, split, file)")
    j.add_argument("--seed", type=int, default=0)
    j.add_argument("--fast", action="store_true", help="switch multi-parton interactions off (~2x faster, no UE)")
    j.add_argument("--no-detector", action="store_true", help="generator-level particles instead of Delphes-lite E-flow")
    j.add_argument("--splits", type=_csv, default=["train", "val", "test"])
    j.add_argument("--classes", type=_csv, default=None, help="comma-separated file stems, e.g. HToBB,TTBar")
    j.add_argument("--quiet", action="store_true", help="no progress bar")
    j.set_defaults(func=_jetclass)
    v = sub.add_parser("validate", help="check JetClass files against the schema and summarise them")
    v.add_argument("dir")
    v.add_argument("--plot", default=None, help="write soft-drop mass / multiplicity plot (PNG)")
    v.set_defaults(func=_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
