"""Figure output shared by every plot partx makes: HEP style, atomic write, printed path."""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: partx plots go to files
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402

from partx.atomic import atomic_write  # noqa: E402


def hep_style() -> None:
    plt.style.use(mplhep.style.CMS)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100, quiet: bool = False, **savefig_kw) -> Path:
    """Render ``fig`` in memory and write it atomically (format from the suffix); close it; print the path."""
    path = Path(path)
    buf = io.BytesIO()
    savefig_kw.setdefault("bbox_inches", "tight")
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, **savefig_kw)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    if not quiet:
        print(f"plot written: {path}")
    return path
