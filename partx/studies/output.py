"""What a study CLI prints when it is done: its markdown table, then every output path (one per line)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from partx.studies.training_size import RunFailed

__all__ = ["print_study_outputs"]


def print_study_outputs(run: Callable[[], tuple[Any, Mapping[str, Path]]]) -> int:
    """Call ``run() -> (doc, paths)``; print ``paths["md"]`` and the paths; exit status (1: a run failed).

    A training that failed (:class:`RunFailed`) is one ``ERROR:`` line naming the run and its log.
    """
    try:
        _, paths = run()
    except RunFailed as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print(Path(paths["md"]).read_text(), end="")
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0
