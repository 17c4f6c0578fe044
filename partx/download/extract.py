"""Archive extraction that writes nothing outside the target and nothing half-done inside it."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from partx.download.errors import DownloadError, UnsafeArchiveError


def _extract_tar(archive: Path, tmp: Path) -> None:
    # tarfile's "data" filter (PEP 706, Python >= 3.11.4) refuses members or links that leave the
    # target, absolute links and device/fifo members, and strips leading "/" from member names.
    with tarfile.open(archive, "r:*") as tf:
        tf.extractall(tmp, filter="data")


def _extract_zip(archive: Path, tmp: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        # zipfile has no extraction filter. It never creates links, and it silently rewrites
        # absolute names and drops ".." components, so a hostile member lands somewhere other than
        # its name says (possibly over another member): refuse such names instead.
        for name in zf.namelist():
            path = PurePosixPath(name.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts:
                raise UnsafeArchiveError(f"{archive.name}: refusing member {name!r} (absolute or '..')")
        zf.extractall(tmp)


def _merge_move(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, merging directories that already exist (re-runs, several archives)."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
        for child in list(src.iterdir()):
            _merge_move(child, dst / child.name)
        src.rmdir()
        return
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.is_dir():
        shutil.rmtree(dst)
    os.replace(src, dst)


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """Extract a tar or zip archive into ``dest``; return the top-level names it contained.

    Everything is unpacked into a temporary directory inside ``dest`` and merged into ``dest`` only
    after the whole archive unpacked cleanly; on any error (:class:`UnsafeArchiveError` for a
    hostile member) the temporary directory is removed and ``dest`` is unchanged.
    """
    archive, dest = Path(archive), Path(dest)
    # tar first: a tar whose last member is a zip can look like a zip (end-of-archive record)
    if tarfile.is_tarfile(archive):
        extract = _extract_tar
    elif zipfile.is_zipfile(archive):
        extract = _extract_zip
    else:
        raise DownloadError(f"{archive} is neither a tar nor a zip archive")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partx-extract-", dir=dest))
    try:
        try:
            extract(archive, tmp)
        except tarfile.FilterError as e:
            raise UnsafeArchiveError(f"{archive.name}: {e}") from None
        except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
            raise DownloadError(f"cannot extract {archive}: {e}") from None
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:
            _merge_move(tmp / name, dest / name)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
