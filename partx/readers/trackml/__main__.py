"""Command line of the TrackML readers (see docs/trackml_data.md).

    python -m partx.readers.trackml preprocess --raw DIR --out DIR [--sets full,6k] [--workers W]
    python -m partx.readers.trackml convert-hept tracking-6k-processed.zip --out DIR

Bad input (missing / corrupt CSV columns, no detectors.csv, unknown set, unwritable --out) ends in one
line and exit status 2 (partx.cli.run_main).
"""

from __future__ import annotations

import json
import sys

from partx.cli import ArgumentParser, csv_list, positive_int, run_main
from partx.readers.trackml.sectors import SETS


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m partx.readers.trackml",
                       description="HEPT-exact TrackML preprocessing into ROOT files weaver reads.")
    sub = p.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("preprocess", help="raw TrackML CSV events -> OUT/processed/{set}/{train,val,test}/")
    pre.add_argument("--raw", required=True, help="folder of event%%09d-{hits,cells,particles,truth}.csv[.gz]")
    pre.add_argument("--out", required=True, help="dataset folder; files go to OUT/processed/")
    pre.add_argument("--sets", type=csv_list, default=list(SETS),
                     help=f"comma-separated sets: {','.join(f'{k} ({v} sector(s))' for k, v in SETS.items())} "
                          f"(default: all)")
    pre.add_argument("--detectors", default=None, help="detectors.csv (default: RAW/ or its parent)")
    pre.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    pre.add_argument("--max-events", type=positive_int, default=None, help="only the first N events by id")
    pre.add_argument("--force", action="store_true", help="rewrite existing files")
    pre.add_argument("--no-progress", action="store_true")
    conv = sub.add_parser("convert-hept", help="HEPT's processed zip (Zenodo 10694703) -> the same ROOT layout")
    conv.add_argument("source", help="tracking-{60k,6k}-processed.zip, its extracted folder or data-*.pt")
    conv.add_argument("--out", required=True, help="dataset folder; files go to OUT/processed/")
    conv.add_argument("--set", choices=("full", "6k"), default=None, help="default: from the file name")
    conv.add_argument("--no-progress", action="store_true")
    where = sub.add_parser("datadir", help="print the folder holding the sets (made if needed: $DATADIR_TrackML "
                                           "or the generated default); for ./train_TrackML.sh")
    where.add_argument("--sets", type=csv_list, default=["full"], help="sets needed (default: full)")
    where.add_argument("--workers", type=positive_int, default=1)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "preprocess":
        from partx.readers.trackml.preprocess import preprocess

        stats = preprocess(args.raw, args.out, args.sets, detectors=args.detectors, workers=args.workers,
                           force=args.force, max_events=args.max_events, progress=not args.no_progress)
    elif args.command == "datadir":
        from partx.readers.trackml.datasets import trackml_data_dir

        log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - stdout carries only the folder
        print(trackml_data_dir(args.sets, workers=args.workers, log=log))
        return 0
    else:
        from partx.readers.trackml.hept_zip import convert_hept

        stats = convert_hept(args.source, args.out, set_name=args.set, progress=not args.no_progress)
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
