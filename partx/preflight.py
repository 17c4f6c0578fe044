"""Check input files against a weaver data config before training starts.

weaver reports a missing branch, a wrong tree, or an unreadable file as a deep awkward/uproot
traceback several seconds into loading. This opens every matched file once (header only: no
baskets / row groups are read) and fails with one line naming the file and the problem. ROOT files
(uproot) and parquet files (pyarrow's footer, which weaver's own parquet reader uses) are checked.

    python -m partx.preflight --data-config data/JetClass/JetClass_full.yaml [--test-only] FILE_OR_GLOB...

Arguments may carry weaver's ``name:`` prefix (``HToBB:/data/HToBB_*.root``). Exit 0 if every file
is readable and has every branch the config needs; exit 2 with a message otherwise.
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
from pathlib import Path


class PreflightError(RuntimeError):
    """An input file cannot serve the data config; the message names the file and the problem."""


def required_branches(data_config_path: str, test_only: bool = False) -> tuple[set[str], str | None]:
    """Branches the config reads (after expanding derived variables), and its tree name (None = auto)."""
    from weaver.utils.data.config import DataConfig

    logging.getLogger("weaver").setLevel(logging.WARNING)
    if not Path(data_config_path).is_file():
        raise PreflightError(f"data config {data_config_path} does not exist")
    config = DataConfig.load(data_config_path, load_observers=True, load_reweight_info=True)
    branches = set(config.test_load_branches if test_only else config.train_load_branches | config.test_load_branches)
    return branches, config.treename


def expand(patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        pattern = pattern.split(":", 1)[1] if ":" in pattern and not Path(pattern).exists() else pattern
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise PreflightError(f"no input file matches {pattern}")
        files.extend(matched)
    return files


def check_root_file(path: str, branches: set[str], treename: str | None) -> None:
    import uproot

    try:
        f = uproot.open(path)
    except Exception as err:  # uproot raises many types for a truncated or non-ROOT file
        raise PreflightError(f"{path}: not a readable ROOT file ({type(err).__name__}: {err})") from None
    with f:
        trees = {k.split(";")[0] for k, c in f.classnames().items() if c in ("TTree", "ROOT::RNTuple")}
        if treename is None:
            if len(trees) != 1:
                raise PreflightError(f"{path}: expected exactly one tree, found {sorted(trees) or 'none'}; set `treename:` in the data config")
            treename = trees.pop()
        elif treename not in trees:
            raise PreflightError(f"{path}: no tree named {treename!r} (trees: {sorted(trees) or 'none'})")
        tree = f[treename]
        if tree.num_entries == 0:
            raise PreflightError(f"{path}: tree {treename!r} has no entries")
        missing = sorted(branches - set(tree.keys()))
        if missing:
            raise PreflightError(f"{path}: tree {treename!r} lacks branch(es) the data config needs: {', '.join(missing)}")


def check_parquet_file(path: str, branches: set[str]) -> None:
    """A parquet file's columns are weaver's branches (top-level fields); no tree name applies."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError for a truncated or foreign file
        raise PreflightError(f"{path}: not a readable parquet file ({type(err).__name__}: {err})") from None
    if pf.metadata.num_rows == 0:
        raise PreflightError(f"{path}: parquet file has no rows")
    missing = sorted(branches - set(pf.schema_arrow.names))
    if missing:
        raise PreflightError(f"{path}: parquet file lacks column(s) the data config needs: {', '.join(missing)}")


def check_files(data_config_path: str, patterns: list[str], test_only: bool = False) -> int:
    """Raise PreflightError on the first bad file; return the number of files checked."""
    branches, treename = required_branches(data_config_path, test_only)
    files = expand(patterns)
    for path in files:
        if path.endswith(".root"):
            check_root_file(path, branches, treename)
        elif path.endswith(".parquet"):
            check_parquet_file(path, branches)
        elif not Path(path).is_file():
            raise PreflightError(f"{path}: not a file")
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-config", required=True)
    parser.add_argument("--test-only", action="store_true", help="check only the branches needed at test time")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    try:
        n = check_files(args.data_config, args.files, args.test_only)
    except PreflightError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    print(f"preflight: {n} file(s) match {args.data_config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
