"""One error discipline for every partx command line.

User errors (a bad option, a missing / corrupt / unreadable input, an output that cannot be written)
end in ONE line naming the problem and exit status 2, checked before any expensive work; Ctrl-C ends
in one line and exit status 130; internal errors keep their traceback (they are bugs to report).

    from partx.cli import ArgumentParser, UserError, run_main

    def main(argv=None) -> int:
        args = ArgumentParser(...).parse_args(argv)
        out = writable_dir(args.out)          # raises UserError before the work starts
        ...
    if __name__ == "__main__":
        sys.exit(run_main(main))
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, NoReturn

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with what the user gave (arguments, input files, output paths): one line, exit 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the partx error line: ``ERROR: <prog>: <message> (see --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"ERROR: {self.prog}: {message} (see --help)\n")


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main(argv)``; turn UserError and Ctrl-C into one line and their exit status."""
    try:
        return main(argv)
    except UserError as err:
        one_line = " ".join(str(err).split("\n"))  # library messages (uproot, yaml) may span lines
        print(f"ERROR: {one_line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): finished outputs are kept, unfinished ones were not written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _int_type(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not {what}")
        return value

    return parse


#: argparse ``type=`` for counts that must be >= 1 / >= 0
positive_int = _int_type(1, "a positive integer (>= 1)")
non_negative_int = _int_type(0, "a non-negative integer (>= 0)")


def csv_list(text: str) -> list[str]:
    """argparse ``type=``: ``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [x.strip() for x in text.split(",") if x.strip()]


def _probe_writable(directory: Path) -> None:
    # os.access is not enough: root passes it on read-only mounts; a real file creation is the test
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise UserError(f"cannot write in {directory}: {err.strerror or err}") from None


def writable_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {what} {path}: {err.strerror or err}") from None
    _probe_writable(path)
    return path


def writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check that ``path`` can be (re)written as a file: not a directory, its folder creatable and writable."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory")
    writable_dir(path.parent if str(path.parent) else Path("."), what=f"folder of the {what}")
    return path


def readable_file(path: str | os.PathLike, what: str = "input file") -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path} is not readable")
    return path
