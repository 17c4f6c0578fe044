"""fastjet prints its banner to C++ stdout on the first clustering of a process; ``banner_silenced`` keeps it
out of a script's stdout (which lists the files written). Shared by every module that clusters with fastjet
(partx.interpret.jets, partx.metrics.pileup_jets)."""

from __future__ import annotations

import contextlib
import os
import sys

_banner_shown = False


@contextlib.contextmanager
def banner_silenced():
    """Redirect fd 1 to /dev/null around the first fastjet call of the process; a no-op afterwards."""
    global _banner_shown
    if _banner_shown:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        _banner_shown = True
