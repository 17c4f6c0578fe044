"""Figure output shared by every plot partx makes: HEP style, atomic write, printed path."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: partx plots go to files
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402


def hep_style() -> None:
    plt.style.use(mplhep.style.CMS)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100, quiet: bool = False) -> Path:
    """Write ``fig`` to ``path`` through a temporary file, so a crash never leaves a half-written plot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    if not quiet:
        print(f"plot written: {path}")
    return path
