#!/usr/bin/env python3
"""Download the datasets used by partx and record their location in env.sh.

    ./get_datasets.py [JetClass|QuarkGluon|TopLandscape|TrackML|Pileup] [-d DATA_DIR]
    ./get_datasets.py JetClass --subsets val test      # skip the 100M-jet training set
    ./get_datasets.py --list                           # files, URLs and md5 sums
    ./get_datasets.py models                           # the official ParT / ParticleNet JetClass weights
    ./get_datasets.py QuarkGluon --subsets original    # the public originals, converted here (also TopLandscape)

Downloads resume (re-run the same command after an interruption or Ctrl-C), every file with a
known md5 is verified before it is used, archives are unpacked safely, and
``export DATADIR_<Name>=<absolute path>`` is written to env.sh. See docs/datasets.md.
Exit status: 0 done, 1 download failed, 2 bad request (nothing downloaded), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from partx import download as dl  # noqa: E402
from partx.cli import (ArgumentParser, UserError, csv_list, non_negative_int, positive_int,  # noqa: E402
                       run_main, writable_dir, writable_file)


def _checksum(text: str) -> tuple[str, str]:
    name, sep, md5 = text.partition("=")
    md5 = md5.strip().lower()
    if not sep or not name or len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
        raise argparse.ArgumentTypeError(f"expected FILE=MD5 (32 hex digits), got {text!r}")
    return name.strip(), md5


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def build_parser(registry: Mapping[str, dl.DatasetSpec]) -> argparse.ArgumentParser:
    p = ArgumentParser(prog="get_datasets.py",
                       description="Download, verify and unpack a dataset, then update env.sh.")
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="one of: " + ", ".join(registry) + ", or 'models' (the official ParT / ParticleNet "
                        "weights; --subsets ParT_full ... picks files)")
    p.add_argument("-d", "--basedir", "--data-dir", dest="basedir", default="./datasets",
                   help="base directory for the datasets (default: ./datasets)")
    p.add_argument("-e", "--envfile", default=str(REPO / "env.sh"),
                   help="env file holding the dataset paths (default: env.sh next to this script)")
    p.add_argument("--no-env", action="store_true", help="do not touch the env file")
    p.add_argument("--subsets", nargs="+", metavar="SUBSET",
                   help="only these parts, e.g. for JetClass: train val test (default: the "
                        "dataset's default parts; 'all' for everything)")
    p.add_argument("--mirror", default=None,
                   help=f"base URL replacing the official ones: files are fetched from "
                        f"MIRROR/<file name> ('{{dataset}}' is substituted); "
                        f"also settable via ${dl.MIRROR_ENV}")
    p.add_argument("--checksum", action="append", type=_checksum, default=[], metavar="FILE=MD5",
                   help="md5 to verify FILE against (overrides the built-in value; use it to pin "
                        "files whose md5 is not known here)")
    p.add_argument("-f", "--force", action="store_true",
                   help="download and extract again even if already done")
    p.add_argument("--keep-archives", action="store_true",
                   help="keep the downloaded archives after extraction")
    p.add_argument("--retries", type=non_negative_int, default=3,
                   help="automatic resume attempts after a dropped connection (default: 3)")
    p.add_argument("--connect-timeout", type=_seconds, default=dl.CONNECT_TIMEOUT,
                   help=f"seconds to wait for a connection (default: {dl.CONNECT_TIMEOUT:g})")
    p.add_argument("--read-timeout", type=_seconds, default=dl.READ_TIMEOUT,
                   help=f"seconds a transfer may stall before it is retried "
                        f"(default: {dl.READ_TIMEOUT:g})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list datasets, files and md5 sums, then exit")
    t = p.add_argument_group("TrackML", "after the download: Kaggle events in DATA_DIR/TrackML/raw (train_*.zip, "
                                        "detectors.zip) are unpacked, verified and preprocessed; HEPT's files "
                                        "are converted to the same ROOT layout (docs/trackml_data.md)")
    t.add_argument("--local-only", action="store_true",
                   help="TrackML: download nothing, only unpack / verify / preprocess local files; QuarkGluon / "
                        "TopLandscape: download nothing, convert the originals in DATA_DIR/<name>/original")
    t.add_argument("--sets", type=csv_list, default=["full", "6k"],
                   help="TrackML sets to build from raw events (full,20k,15k,10k,6k,3k; default: full,6k)")
    t.add_argument("--workers", type=positive_int, default=1, help="TrackML preprocessing processes")
    return p


def _list(registry: Mapping[str, dl.DatasetSpec]) -> None:
    for spec in registry.values():
        print(f"{spec.name}  ({spec.variable})  {spec.homepage}")
        if spec.description:
            print(f"  {spec.description}")
        for f in spec.files:
            flag = "" if f.default else "  [not downloaded by default]"
            print(f"  [{f.subset}] {f.url}\n      md5: {f.md5 or 'unknown (not verified)'}{flag}")


def main(argv: list[str] | None = None, registry: Mapping[str, dl.DatasetSpec] | None = None) -> int:
    """Exit status 0 done, 1 download failed, 2 bad request (partx.cli), 130 interrupted."""
    registry = dl.REGISTRY if registry is None else registry
    parser = build_parser(registry)
    args = parser.parse_args(argv)
    if args.list:
        _list(registry)
        return 0
    if not args.dataset:
        raise UserError(f"{parser.prog}: name a dataset: {', '.join(registry)} (see --help)")
    if args.dataset.lower() == "models":
        return _official_models(args)
    name = dl.resolve_dataset(args.dataset, registry).name
    trackml = name == "TrackML"
    benchmark = name in _BENCHMARK_READERS
    if args.local_only and not (trackml or benchmark):
        raise UserError(f"{parser.prog}: --local-only applies to TrackML, QuarkGluon and TopLandscape only")
    if trackml:
        from partx.readers.trackml.sectors import SETS

        unknown = [s for s in args.sets if s not in SETS]
        if unknown or not args.sets:
            raise UserError(f"{parser.prog}: unknown TrackML set(s) {', '.join(unknown) or '(none)'}; "
                            f"choose from {', '.join(SETS)}")
    if args.local_only:
        return _benchmark_local(args, registry, name) if benchmark else _trackml_local(args, registry)
    try:
        dsdir = dl.fetch_dataset(
            args.dataset,
            args.basedir,
            registry=registry,
            subsets=args.subsets,
            mirror=args.mirror,
            env_file=None if args.no_env else args.envfile,
            checksums=dict(args.checksum),
            force=args.force,
            keep_archives=args.keep_archives,
            retries=args.retries,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
            progress=not args.no_progress,
        )
    except dl.DownloadError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # more specific than run_main's line: the download resumes
        print("interrupted (Ctrl-C): the partial download (*.part) was kept; "
              "re-run the same command to resume", file=sys.stderr)
        return 130
    if trackml:
        from partx.readers.trackml.datasets import prepare_local

        prepare_local(dsdir, args.sets, workers=args.workers, progress=not args.no_progress)
    elif dl.resolve_dataset(args.dataset, registry).name == "Pileup":
        from partx.readers.pileup.datasets import prepare_local as prepare_pileup

        prepare_pileup(dsdir, progress=not args.no_progress)  # HEPT's data.pt -> processed/{train,val,test}
    if benchmark:
        _convert_originals(name, dsdir, required=False)
    return 0


#: datasets whose public originals partx converts (partx.readers.<module>) after download
_BENCHMARK_READERS = {"QuarkGluon": "quarkgluon", "TopLandscape": "toplandscape"}


def _convert_originals(name: str, dsdir: Path, required: bool) -> None:
    """Convert DATA_DIR/<name>/original (downloaded with ``--subsets original``) into the parquet files."""
    import importlib

    from partx.readers.jet_benchmarks import ORIGINAL_SUBDIR

    reader = importlib.import_module(f"partx.readers.{_BENCHMARK_READERS[name]}")
    src = Path(dsdir) / ORIGINAL_SUBDIR
    if not reader.find_originals(src):
        if required:
            raise UserError(f"no {name} originals in {src}: download them with ./get_datasets.py {name} --subsets original, "
                            f"or copy them there")
        return
    print(f"converting the {name} originals in {src} -> {dsdir}")
    reader.convert_dir(src, dsdir)


def _benchmark_local(args: argparse.Namespace, registry: Mapping[str, dl.DatasetSpec], name: str) -> int:
    """``get_datasets.py QuarkGluon|TopLandscape --local-only``: convert local originals, record env.sh."""
    spec = dl.resolve_dataset(name, registry)
    if not args.no_env:
        writable_file(os.path.realpath(args.envfile), "env file")
    dsdir = writable_dir(Path(args.basedir).expanduser().resolve() / spec.name, "data directory")
    _convert_originals(name, dsdir, required=True)
    if not args.no_env:
        dl.update_env_file(args.envfile, spec.variable, str(dsdir))
        print(f"Updated {args.envfile}: export {spec.variable}={dsdir}")
    return 0


def _official_models(args: argparse.Namespace) -> int:
    """``get_datasets.py models``: the ParT repository's checkpoints into models/official/ (partx.models_store)."""
    from partx.models_store.loader import models_dir
    from partx.models_store.official import fetch

    names = None if not args.subsets or args.subsets == ["all"] else args.subsets
    if args.mirror and not args.mirror.lower().startswith(("http://", "https://")):
        raise UserError(f"{args.mirror!r} is not an http(s) URL (--mirror)")
    try:
        fetch(names, models_dir(), base_url=args.mirror, force=args.force, retries=args.retries,
              progress=not args.no_progress, connect_timeout=args.connect_timeout)
    except dl.DownloadError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): the partial download (*.part) was kept; re-run the same command to resume",
              file=sys.stderr)
        return 130
    print(f"official checkpoints in {models_dir() / 'official'} (cards beside them; load with "
          f"partx.models_store.load('official/ParT_full') or --checkpoint official/ParT_full)")
    return 0


def _trackml_local(args: argparse.Namespace, registry: Mapping[str, dl.DatasetSpec]) -> int:
    """``get_datasets.py TrackML --local-only``: no download; unpack / verify / preprocess, record env.sh."""
    from partx.readers.trackml.datasets import prepare_local

    spec = dl.resolve_dataset("TrackML", registry)
    if not args.no_env:
        writable_file(os.path.realpath(args.envfile), "env file")
    dsdir = writable_dir(Path(args.basedir).expanduser().resolve() / spec.name, "data directory")
    prepare_local(dsdir, args.sets, workers=args.workers, progress=not args.no_progress)
    if not args.no_env:
        dl.update_env_file(args.envfile, spec.variable, str(dsdir))
        print(f"Updated {args.envfile}: export {spec.variable}={dsdir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
