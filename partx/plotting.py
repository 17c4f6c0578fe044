"""Figure output shared by every plot partx makes: HEP style, atomic write, printed path."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: partx plots go to files
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from partx.atomic import atomic_path  # noqa: E402
from partx.cli import UserError, writable_file  # noqa: E402


def hep_style() -> None:
    plt.style.use(mplhep.style.CMS)


def plot_file(path: str | os.PathLike, what: str = "plot file") -> Path:
    """Check a plot path before any work: its folder writable (partx.cli.writable_file) and its suffix a
    format matplotlib writes (none means png, as ``save_figure``); UserError otherwise."""
    path = writable_file(path, what)
    fmt = path.suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt and fmt not in formats:
        raise UserError(f"{what} {path}: matplotlib cannot write '.{fmt}' files; use one of "
                        f"{', '.join('.' + f for f in sorted(formats))}")
    return path


def save_figure(fig, path: str | os.PathLike, dpi: int = 100, quiet: bool = False, **savefig_kw) -> Path:
    """Write ``fig`` atomically (format from ``path``'s suffix, png without one); close it; print the path."""
    path = Path(path)
    savefig_kw.setdefault("bbox_inches", "tight")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, **savefig_kw)
    finally:
        plt.close(fig)
    if not quiet:
        print(f"plot written: {path}")
    return path
