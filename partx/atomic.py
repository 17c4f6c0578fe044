"""Write-then-rename, so a crash or Ctrl-C never leaves a truncated file or folder under a good one's name.

Three forms, one mechanism (a hidden temporary sibling in the same directory, hence the same file
system, renamed into place only on success and removed on any exception, KeyboardInterrupt included):

* ``atomic_write(path, data)``: bytes or text.
* ``atomic_path(path)``: a temporary file name, for writers that want a file name (matplotlib
  ``savefig``, ``torch.save``, ``uproot.recreate``, ``torch.profiler``'s ``export_chrome_trace``).
* ``atomic_dir(path)``: a temporary folder for outputs written as a set (benchmark and profile folders,
  predictions). ``merge=False`` swaps the whole folder in; ``merge=True`` moves its entries into an
  existing folder that holds other results too, each entry by one rename (staged inside that folder,
  so the renames never cross a mount point and a read-only folder fails on entry, not after the work).

Temporary names start with "." (hidden from ``*`` globs) and keep the final suffix, so writers that
choose a format by suffix (``.png``, ``.json.gz``) still do. Files and folders get the permissions of
a normally created one (``mkstemp`` / ``mkdtemp`` create 0600 / 0700). A target that cannot be
written (read-only or missing permissions, a file where a folder is needed) raises ``UnwritableOutput``
on entry, before the caller has done any work; it is a ``partx.cli.UserError`` (one line, exit 2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from partx.cli import UserError


class UnwritableOutput(UserError, OSError):
    """The target's folder cannot be created or written, or the target folder is a file: a user error
    (``partx.cli.run_main`` prints it as one line, exit 2) that is also an OSError."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _discard(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; on success it is renamed to ``path``, on error removed.

    The temporary file exists (empty) when yielded; a writer may overwrite or recreate it. ``mode``:
    permission bits of the result (e.g. to keep an executable script's); default 0o666 less the umask.
    """
    path = Path(path)
    with _unwritable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through a temporary file; returns ``path``.

    ``mode`` as for ``atomic_path``.
    """
    path = Path(path)
    with atomic_path(path, mode=mode) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, merge: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; publish it on success, remove it on error.

    ``merge=False``: the folder becomes ``path``; an existing ``path`` is first renamed aside and deleted
    only after the new one is in place (the two renames are not one atomic step: a crash between them
    leaves the old folder complete under its hidden ``.old`` name, never a mix).
    ``merge=True``: each entry of the folder replaces the entry of the same name in ``path`` (files by
    ``os.replace``, sub-folders merged the same way); other entries of ``path`` are left alone.
    Raises UnwritableOutput if ``path`` is a file or its folder is not writable, before anything is created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UnwritableOutput(f"{path} exists and is not a directory")
    # merging into an existing folder: stage inside it; rename(2) fails across mount points (EXDEV), and a
    # folder that is itself read-only while its parent is not would only fail at the end, after the work
    stage_in = path if merge and path.is_dir() else path.parent
    with _unwritable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=stage_in, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if merge:
            _merge(tmp, path)
        else:
            _swap(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


@contextlib.contextmanager
def _unwritable(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():  # mkdir says "File exists" / "Not a directory"
            raise UnwritableOutput(f"cannot write {path}: {blocker} exists and is not a directory") from e
        raise UnwritableOutput(f"cannot write {path}: {e.strerror or e} ({e.filename or path.parent})") from e


def _merge(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _merge(entry, target)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    src.rmdir()


def _swap(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.rename(tmp, path)
        return
    # rename(2) may replace an empty folder: reserve a unique hidden name, then move the old folder onto it
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
