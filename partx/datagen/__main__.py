"""Command line: ``python -m partx.datagen {jetclass,validate,trackml,trackml-summary,pileup} ...``.

  python -m partx.datagen jetclass --out DIR [--jets-per-class N | --preset tiny|small] [--workers W]
         [--seed S] [--fast] [--no-detector] [--splits train,val,test] [--classes HToBB,TTBar,...]
  python -m partx.datagen validate DIR [--plot PATH.png]
  python -m partx.datagen trackml --out DIR --events N [--pileup MU] [--seed S] [--workers W] [--detectors FILE]
         [--noise-fraction F] [--first-event K]
  python -m partx.datagen trackml-summary DIR [--plot PATH.png]
  python -m partx.datagen pileup --out DIR --events N [--mu 200] [--seed S] [--workers W] [--events-per-file K]
  python -m partx.datagen {quarkgluon,toplandscape} --out DIR [--jets N | --preset tiny|small] [--files F]
         [--workers W] [--seed S] [--fast] [--convert PARQUET_DIR]

Each sub-command is one entry of ``COMMANDS`` below (name -> parser builder); a new dataset's generator
(TrackML, pileup) adds its entry there. This file stays import-light: Pythia / fastjet load only when
generating. Bad arguments end in one line and exit 2 (partx.cli), checked before generating.
"""

from __future__ import annotations

import sys
import time

from partx.cli import ArgumentParser, UserError, csv_list, non_negative_int, positive_int, run_main, writable_dir

#: --splits accepts the short names and the real dataset's directory names
_SPLIT_ALIASES = {"train": "train", "val": "val", "test": "test",
                  "train_100M": "train", "val_5M": "val", "test_20M": "test"}


def _splits(text: str) -> list[str]:
    out = []
    for s in csv_list(text):
        if s not in _SPLIT_ALIASES:
            raise UserError(f"unknown split {s!r}: choose from train, val, test (or {', '.join(list(_SPLIT_ALIASES)[3:])})")
        out.append(_SPLIT_ALIASES[s])
    if not out:
        raise UserError("--splits is empty")
    return list(dict.fromkeys(out))


def _jetclass(args) -> int:
    from partx.datagen import jetclass, schema

    n = args.jets_per_class
    if n is None:
        n = jetclass.PRESETS[args.preset or "tiny"]
    splits = _splits(args.splits)
    if args.classes is not None and not args.classes:
        raise UserError(f"--classes is empty: give comma-separated file stems from {', '.join(schema.STEMS)}")
    unknown = [c for c in args.classes or [] if c not in schema.STEMS]
    if unknown:
        raise UserError(f"unknown class(es) {', '.join(unknown)}: choose from {', '.join(schema.STEMS)}")
    writable_dir(args.out)
    args.splits = splits
    t0 = time.perf_counter()
    try:
        paths = jetclass.generate(
            args.out, n, seed=args.seed, workers=args.workers, splits=tuple(args.splits), classes=args.classes,
            detector=not args.no_detector, fast=args.fast, progress=not args.quiet,
        )
    except jetclass.GenerationMismatch as err:
        raise UserError(str(err)) from None
    sizes = jetclass.split_sizes(n)
    print(f"{len(paths)} files under {args.out}/Pythia ({', '.join(f'{s}: {sizes[s]} jets/class' for s in args.splits)}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _validate(args) -> int:
    from pathlib import Path

    from partx.datagen.validate import SchemaError, plot_summary, validate_dir

    if args.plot:
        from partx.plotting import plot_file

        plot_file(args.plot)
    if not Path(args.dir).exists():
        raise UserError(f"{args.dir} does not exist (give a JetClass directory or a .root file)")
    try:
        summary = validate_dir(args.dir)
    except (SchemaError, FileNotFoundError) as exc:
        raise UserError(f"validation failed: {exc}") from None
    print(summary.table())
    if args.plot:
        print(f"plot written to {plot_summary(summary, args.plot)}")
    return 0


def _add_jetclass(sub) -> None:
    j = sub.add_parser("jetclass", help="generate JetClass-format ROOT files (Pythia 8 + Delphes-lite + fastjet)")
    j.add_argument("--out", required=True, help="output directory (files go to OUT/Pythia/<split>/)")
    j.add_argument("--jets-per-class", type=positive_int, default=None,
                   help="training jets per class (val/test get 25%% each); overrides --preset")
    j.add_argument("--preset", choices=("tiny", "small"), default=None,
                   help="tiny: 24 train jets/class (<1 min on 2 cores); small: 800 (README demo)")
    j.add_argument("--workers", type=positive_int, default=1, help="parallel processes over (class, split, file)")
    j.add_argument("--seed", type=non_negative_int, default=0, help="random seed (>= 0; default 0)")
    j.add_argument("--fast", action="store_true", help="switch multi-parton interactions off (~2x faster, no UE)")
    j.add_argument("--no-detector", action="store_true", help="generator-level particles instead of Delphes-lite E-flow")
    j.add_argument("--splits", default="train,val,test",
                   help="comma-separated: train,val,test (or the directory names train_100M,val_5M,test_20M)")
    j.add_argument("--classes", type=csv_list, default=None, help="comma-separated file stems, e.g. HToBB,TTBar")
    j.add_argument("--quiet", action="store_true", help="no progress bar")
    j.set_defaults(func=_jetclass)


def _add_validate(sub) -> None:
    v = sub.add_parser("validate", help="check JetClass files against the schema and its conventions, and summarise them")
    v.add_argument("dir")
    v.add_argument("--plot", default=None, help="write soft-drop mass / multiplicity plot (PNG)")
    v.set_defaults(func=_validate)


def _add_trackml(sub) -> None:
    from partx.datagen.trackml.cli import add_trackml

    add_trackml(sub)


def _add_trackml_summary(sub) -> None:
    from partx.datagen.trackml.cli import add_summary

    add_summary(sub)


def _benchmark(args) -> int:
    from partx.datagen import benchmarks
    from partx.datagen.jetclass import GenerationMismatch

    writable_dir(args.out)
    t0 = time.perf_counter()
    try:
        paths = benchmarks.generate(args.cmd, args.out, args.jets, preset=args.preset or "tiny", seed=args.seed,
                                    files=args.files, workers=args.workers, fast=args.fast, progress=not args.quiet)
    except GenerationMismatch as err:
        raise UserError(str(err)) from None
    print(f"{len(paths)} files under {args.out} ({args.cmd} original format) in {time.perf_counter() - t0:.1f} s")
    if args.convert:
        from partx.readers import quarkgluon, toplandscape

        (quarkgluon if args.cmd == "quarkgluon" else toplandscape).convert_dir(args.out, args.convert)
    return 0


def _add_benchmark(name: str, about: str):
    def add(sub) -> None:
        from partx.datagen.benchmarks import PRESETS, QG_FILES

        b = sub.add_parser(name, help=about)
        b.add_argument("--out", required=True, help="output directory for the original-format files")
        b.add_argument("--jets", type=positive_int, default=None,
                       help=("jets in all files together" if name == "quarkgluon" else
                             "training jets (val and test get a third each)") + "; overrides --preset")
        b.add_argument("--preset", choices=tuple(PRESETS), default=None,
                       help=", ".join(f"{k}: {v} jets" for k, v in PRESETS.items()) + " (default tiny)")
        if name == "quarkgluon":
            b.add_argument("--files", type=positive_int, default=None,
                           help=f"number of QG_jets*.npz files (default {QG_FILES['tiny']} for the presets; "
                                "the conversion trains on the first 90%%)")
        else:
            b.set_defaults(files=None)
        b.add_argument("--workers", type=positive_int, default=1, help="parallel processes over files")
        b.add_argument("--seed", type=non_negative_int, default=0, help="random seed (>= 0; default 0)")
        b.add_argument("--fast", action="store_true", help="switch multi-parton interactions off (quarkgluon)")
        b.add_argument("--convert", default=None, metavar="DIR",
                       help="also convert to the parquet files of the data configs in DIR (the DATADIR)")
        b.add_argument("--quiet", action="store_true", help="no progress bar")
        b.set_defaults(func=_benchmark)

    return add


def _add_pileup(sub) -> None:
    from partx.datagen.pileup.cli import add_pileup

    add_pileup(sub)


#: sub-command name -> function adding its parser (and ``func``) to the sub-parsers
COMMANDS = {"jetclass": _add_jetclass, "validate": _add_validate, "trackml": _add_trackml,
            "trackml-summary": _add_trackml_summary, "pileup": _add_pileup,
            "quarkgluon": _add_benchmark("quarkgluon", "quark vs gluon jets, Z(->nunu)+jet, EnergyFlow's npz format"),
            "toplandscape": _add_benchmark("toplandscape", "top vs QCD jets, the top tagging landscape's HDF5 format")}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m partx.datagen", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=ArgumentParser)
    for add in COMMANDS.values():
        add(sub)
    return p


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
