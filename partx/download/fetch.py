"""One dataset end to end: check the request, download, verify, unpack, record in env.sh."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Mapping, Sequence

from partx.cli import writable_dir, writable_file
from partx.download.envfile import update_env_file
from partx.download.errors import NetworkUnreachableError, UsageError
from partx.download.extract import safe_extract
from partx.download.registry import MIRROR_ENV, DatasetSpec, RemoteFile, resolve_dataset
from partx.download.transport import CONNECT_TIMEOUT, READ_TIMEOUT, Log, download_file


def check_checksums(files: Sequence[RemoteFile], checksums: Mapping[str, str]) -> None:
    """A ``--checksum`` for a file that is not being downloaded would be silently unused: refuse it."""
    unknown = sorted(set(checksums) - {f.name for f in files})
    if unknown:
        raise UsageError(f"--checksum for file(s) not being downloaded: {', '.join(unknown)}; "
                         f"choose from: {', '.join(f.name for f in files)}")


def check_mirror(mirror: str) -> None:
    """A mirror the transport cannot use (no scheme, ftp://, a bare path) would fail only at the first
    download, as a network error: refuse it as a bad request instead."""
    parts = urllib.parse.urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"mirror {mirror!r} (--mirror or ${MIRROR_ENV}) is not an http:// or https:// URL")


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
    ``force`` ignores the markers. Returns the dataset directory. Bad requests (unknown dataset,
    subset or checksum file; unusable data directory or env file) raise a
    :class:`partx.cli.UserError` before anything is downloaded.
    """
    spec = resolve_dataset(name, registry)
    files = spec.select(subsets)
    checksums = dict(checksums or {})
    check_checksums(files, checksums)
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    if mirror is not None:
        check_mirror(mirror)
    # user errors (partx.cli.UserError: one line, exit 2) surface here, before any download
    if env_file is not None:  # before the data directory, which writable_dir creates
        writable_file(os.path.realpath(env_file), "env file")  # written at its target if a link
    dsdir = writable_dir(Path(data_dir).expanduser().resolve() / spec.name, "data directory")

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
        if f.archive:
            log(f"  extracting {f.name} -> {target}")
            safe_extract(archive, target)
        else:  # a data file: moved into place as it is
            target.mkdir(parents=True, exist_ok=True)
            os.replace(archive, target / f.name)
        marker.write_text((md5 or "unverified") + "\n")
        if f.archive and not keep_archives:
            archive.unlink()

    if env_file is not None:
        update_env_file(env_file, spec.variable, str(dsdir))
        log(f"Updated {env_file}: export {spec.variable}={dsdir}")
    return dsdir
