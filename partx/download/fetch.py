"""One dataset end to end: check the request, download, verify, unpack, record in env.sh."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from partx.download.envfile import update_env_file
from partx.download.errors import NetworkUnreachableError, UsageError
from partx.download.extract import safe_extract
from partx.download.registry import MIRROR_ENV, DatasetSpec, RemoteFile, resolve_dataset
from partx.download.transport import CONNECT_TIMEOUT, READ_TIMEOUT, Log, download_file


def check_writable_dir(path: Path, what: str) -> None:
    """Raise :class:`UsageError` unless ``path`` is, or can be created as, a writable directory.

    Checked on the nearest existing ancestor, without creating anything, so a bad ``-d`` or env
    file fails in a second instead of after a long download.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot use {what} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):  # also False on a read-only mount, even for root
        raise UsageError(f"cannot use {what} {path}: {existing} is not writable")


def check_request(files: Sequence[RemoteFile], dsdir: Path, env_file: str | os.PathLike | None,
                  checksums: Mapping[str, str]) -> None:
    """Every user error that can be found before the first byte is downloaded."""
    unknown = sorted(set(checksums) - {f.name for f in files})
    if unknown:
        raise UsageError(f"--checksum for file(s) not being downloaded: {', '.join(unknown)}; "
                         f"choose from: {', '.join(f.name for f in files)}")
    check_writable_dir(dsdir, "data directory")
    if env_file is not None:
        real = Path(os.path.realpath(env_file))
        if real.is_dir():
            raise UsageError(f"cannot use env file {env_file}: it is a directory")
        check_writable_dir(real.parent, "env file directory")


def fetch_dataset(
    name: str,
    data_dir: str | os.PathLike = "datasets",
    *,
    registry: Mapping[str, DatasetSpec] | None = None,
    subsets: Sequence[str] | None = None,
    mirror: str | None = None,
    env_file: str | os.PathLike | None = None,
    checksums: Mapping[str, str] | None = None,
    force: bool = False,
    keep_archives: bool = False,
    retries: int = 3,
    retry_wait: float = 2.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    progress: bool = True,
    log: Log = print,
) -> Path:
    """Download, verify and unpack one dataset into ``data_dir/<name>``; update ``env_file``.

    ``mirror`` (default ``$PARTX_DATASET_MIRROR``) replaces every file URL by
    ``<mirror>/<file name>``. ``checksums`` maps file names to md5 sums, overriding the registry.
    A marker ``.<file>.done`` in the dataset directory makes re-runs skip extracted files;
    ``force`` ignores the markers. Returns the dataset directory.
    """
    spec = resolve_dataset(name, registry)
    files = spec.select(subsets)
    checksums = dict(checksums or {})
    dsdir = Path(data_dir).expanduser().resolve() / spec.name
    check_request(files, dsdir, env_file, checksums)
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None

    log(f"{spec.name}: {len(files)} file(s) -> {dsdir}")
    if spec.notes:
        log(spec.render(spec.notes, files, dsdir))
    for f in files:
        md5 = checksums.get(f.name, f.md5)
        marker = dsdir / f".{f.name}.done"
        if marker.exists() and not force:
            log(f"  {f.name}: already downloaded and extracted "
                f"(remove {marker.name} or use --force to redo)")
            continue
        archive = dsdir / f.name
        try:
            download_file(f.url_for(mirror, spec.name), archive, md5, force=force, retries=retries,
                          retry_wait=retry_wait, connect_timeout=connect_timeout,
                          read_timeout=read_timeout, progress=progress, log=log)
        except NetworkUnreachableError as e:
            hint = spec.render(spec.offline_hint, files, dsdir)
            raise NetworkUnreachableError(f"{e}\n{hint}".rstrip()) from None
        target = (dsdir / f.extract_to).resolve()
        log(f"  extracting {f.name} -> {target}")
        safe_extract(archive, target)
        marker.write_text((md5 or "unverified") + "\n")
        if not keep_archives:
            archive.unlink()

    if env_file is not None:
        update_env_file(env_file, spec.variable, str(dsdir))
        log(f"Updated {env_file}: export {spec.variable}={dsdir}")
    return dsdir
