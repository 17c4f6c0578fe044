"""Command line of the pileup readers (see docs/pileup_data.md).

    python -m partx.readers.pileup preprocess --raw FILE_OR_DIR... --out DIR [--seed 42] [--events-per-file 100]
    python -m partx.readers.pileup convert-hept pileup-10k-processed.zip --out DIR
    python -m partx.readers.pileup datadir            # the folder ./train_Pileup.sh uses (made if needed)

Bad input (missing / corrupt raw file, missing PF member, NaN / inf, empty event, unknown PID, unwritable
--out) ends in one ``ERROR:`` line and exit status 2 (partx.cli.run_main).
"""

from __future__ import annotations

import json
import sys

from partx.cli import ArgumentParser, non_negative_int, positive_int, run_main


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m partx.readers.pileup",
                       description="HEPT-exact pileup preprocessing into ROOT files weaver reads.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    pre = sub.add_parser("preprocess", help="Delphes PF files -> OUT/processed/{train,val,test}/")
    pre.add_argument("--raw", required=True, nargs="+", help="raw .root files and / or folders of them")
    pre.add_argument("--out", required=True, help="dataset folder; files go to OUT/processed/")
    pre.add_argument("--seed", type=non_negative_int, default=42, help="permutation / split seed (HEPT: 42)")
    pre.add_argument("--events-per-file", type=positive_int, default=100, help="events per processed file")
    pre.add_argument("--force", action="store_true", help="rebuild an existing processed set")
    pre.add_argument("--no-progress", action="store_true")
    conv = sub.add_parser("convert-hept", help="HEPT's pileup-10k-processed.zip (Zenodo 10694703) -> the same layout")
    conv.add_argument("source", help="pileup-10k-processed.zip, its extracted folder, or data.pt")
    conv.add_argument("--out", required=True, help="dataset folder; files go to OUT/processed/")
    conv.add_argument("--events-per-file", type=positive_int, default=100, help="events per processed file")
    conv.add_argument("--no-progress", action="store_true")
    where = sub.add_parser("datadir", help="print the folder holding processed/{train,val,test} (made if needed: "
                                           "$DATADIR_Pileup or the generated default)")
    where.add_argument("--events", type=positive_int, default=None, help="events of the generated default")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "preprocess":
        from partx.cli import writable_dir
        from partx.readers.pileup.preprocess import preprocess

        writable_dir(args.out)
        stats = preprocess(args.raw, args.out, seed=args.seed, events_per_file=args.events_per_file,
                           force=args.force, progress=not args.no_progress)
    elif args.command == "datadir":
        from partx.readers.pileup.datasets import pileup_data_dir

        print(pileup_data_dir(events=args.events, log=lambda m: print(m, file=sys.stderr)))
        return 0
    else:
        from partx.readers.pileup.hept_zip import convert_hept

        stats = convert_hept(args.source, args.out, events_per_file=args.events_per_file,
                             progress=not args.no_progress)
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
