"""HTTP download through ``requests``: resume into ``NAME.part``, verify md5, then rename.

Resume follows RFC 9110 range requests: ``Range: bytes=N-`` answered by 206 with a matching
``Content-Range`` appends; 200 means the server ignored the range, so the file restarts from
byte 0; 416 with ``Content-Range: bytes */N`` equal to the partial size means it was complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Callable

import requests
from tqdm import tqdm

from partx.download.errors import (
    ChecksumError,
    DownloadError,
    NetworkUnreachableError,
    TransferInterruptedError,
)

#: Seconds allowed to establish a connection (DNS + TCP + TLS): offline fails this fast.
CONNECT_TIMEOUT = 15.0
#: Seconds a transfer may stall (no bytes received) before it counts as interrupted.
READ_TIMEOUT = 60.0

_CHUNK = 1 << 16  # small enough that an interrupt loses little of what arrived
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

Log = Callable[[str], None]


def _warn(msg: str) -> None:
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)


def md5sum(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    """md5 hex digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


class _Restart(Exception):
    """Internal: discard the partial file and start again from byte 0."""


def _root_cause(exc: BaseException) -> BaseException:
    """The socket-level error under requests' and urllib3's wrappers (for a short message)."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    inner = getattr(inner, "reason", None) or inner  # urllib3 MaxRetryError -> its reason
    while inner.__cause__ or inner.__context__:
        inner = inner.__cause__ or inner.__context__
    return inner


def _unreachable(url: str, exc: BaseException) -> NetworkUnreachableError:
    host = urllib.parse.urlsplit(url).netloc or url
    cause = _root_cause(exc)
    reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    return NetworkUnreachableError(
        f"network unreachable: could not connect to {host} ({reason}). "
        f"Check your internet connection / proxy settings."
    )


def _get(session: requests.Session, url: str, offset: int,
         timeout: tuple[float, float]) -> requests.Response:
    # identity: md5 sums and Range offsets refer to the bytes as stored, never to a re-encoding
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return session.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.ConnectionError as e:  # DNS, refused, unreachable, connect timeout
        raise _unreachable(url, e) from None
    except requests.Timeout as e:  # connected, but no response header within the read timeout
        raise TransferInterruptedError(f"no answer from {url} ({_root_cause(e)})") from None
    except requests.RequestException as e:
        raise DownloadError(f"cannot open {url}: {e}") from None


def _check_space(directory: Path, needed: int, name: str) -> None:
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise DownloadError(
            f"not enough disk space in {directory} for {name}: need {needed} more bytes, {free} free")


def _transfer_once(session: requests.Session, url: str, part: Path, *, timeout: tuple[float, float],
                   progress: bool, chunk_size: int, log: Log) -> str:
    """One HTTP request appending to (or rewriting) ``part``; returns the md5 of the whole file."""
    name = part.name.removesuffix(".part")
    offset = part.stat().st_size if part.exists() else 0
    hasher = hashlib.md5()
    if offset:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(chunk_size), b""):
                hasher.update(block)

    with _get(session, url, offset, timeout) as resp:
        crange = resp.headers.get("Content-Range", "")
        length = resp.headers.get("Content-Length", "")
        if resp.status_code == 416 and offset:
            if crange.rpartition("/")[2].strip() == str(offset):
                return hasher.hexdigest()  # the partial file is already complete
            raise _Restart("server rejected the resume range (HTTP 416)")
        if resp.status_code == 206 and offset:
            m = _CONTENT_RANGE.fullmatch(crange.strip())
            if not m or int(m[1]) != offset:
                raise _Restart("server answered the resume request with a different range")
            total = int(m[3]) if m[3] != "*" else None
            mode = "ab"
            log(f"  resuming {name} at byte {offset}")
        elif resp.status_code == 200:
            if offset:
                log(f"  server ignored the Range request; restarting {name} from scratch")
                offset, hasher = 0, hashlib.md5()
            total = int(length) if length.isdigit() else None
            mode = "wb"
        else:
            raise DownloadError(f"HTTP {resp.status_code} {resp.reason} for {url}")
        if total is not None:
            _check_space(part.parent, total - offset, name)

        received = offset
        # urllib3 raises on a short body and drops the bytes of the chunk it was filling; let the
        # stream end instead, keep every byte that arrived, and detect the short body below
        resp.raw.enforce_content_length = False
        # a Ctrl-C (KeyboardInterrupt) leaves through both context managers: what arrived stays in
        # ``part``, flushed, for the next run to resume
        with open(part, mode) as fh, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=name, disable=not progress) as bar:
            try:
                for block in resp.iter_content(chunk_size):
                    fh.write(block)
                    hasher.update(block)
                    received += len(block)
                    bar.update(len(block))
            except requests.RequestException as e:  # connection dropped, read timeout, short body
                raise TransferInterruptedError(
                    f"transfer of {name} interrupted after {received} bytes ({_root_cause(e)})"
                ) from None

    if total is not None and received < total:
        raise TransferInterruptedError(f"transfer of {name} interrupted after {received} of {total} bytes")
    if total is not None and received > total:
        part.unlink()
        raise DownloadError(f"server sent more data than announced for {url}; partial file removed")
    return hasher.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    *,
    force: bool = False,
    retries: int = 0,
    retry_wait: float = 2.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    progress: bool = True,
    chunk_size: int = _CHUNK,
    log: Log = print,
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify ``md5``, rename; return ``dest``.

    * An existing ``dest`` whose md5 matches is kept (no network access).
    * An interrupted transfer leaves ``dest.part``; ``retries`` more attempts resume it here, and
      a later call resumes it too.
    * On md5 mismatch the partial file is deleted and :class:`ChecksumError` names the file and
      both sums: ``dest`` only ever appears after a successful verification (``os.replace``).
    * ``verify(path)``: the caller's own check of the complete download (another checksum, a size), run
      before the rename; a :class:`DownloadError` it raises deletes the download. With it, a missing
      ``md5`` is not warned about, and an existing ``dest`` is checked by it instead of kept unverified.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    md5 = md5.lower() if md5 else None

    if force:
        dest.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    elif dest.exists() and md5 is None and verify is not None:
        try:
            verify(dest)
            log(f"  {dest.name}: already present, verified")
            return dest
        except DownloadError as why:
            _warn(f"{why}; downloading it again")
            dest.unlink()
    elif dest.exists():
        if md5 is None:
            _warn(f"{dest} already exists and has no known md5; using it unverified")
            return dest
        actual = md5sum(dest, chunk_size)
        if actual == md5:
            log(f"  {dest.name}: already present, md5 OK")
            return dest
        _warn(f"{dest} exists but its md5 is {actual}, expected {md5}; downloading it again")
        dest.unlink()

    log(f"  downloading {url}\n    -> {dest}")
    attempt, restarted = 0, False
    with requests.Session() as session:
        while True:
            try:
                digest = _transfer_once(session, url, part, timeout=(connect_timeout, read_timeout),
                                        progress=progress, chunk_size=chunk_size, log=log)
                break
            except _Restart as why:
                if restarted:
                    raise DownloadError(f"could not resume {dest.name}: {why}") from None
                restarted = True
                log(f"  {why}; restarting {dest.name} from scratch")
                part.unlink(missing_ok=True)
            except TransferInterruptedError as e:
                if attempt >= retries:
                    raise TransferInterruptedError(
                        f"{e}. The partial file {part} was kept: re-run the same command to resume."
                    ) from None
                attempt += 1
                log(f"  {e}; retrying ({attempt}/{retries}) and resuming")
                time.sleep(retry_wait)

    if verify is not None:
        try:
            verify(part)
        except DownloadError:
            part.unlink()
            raise
    if md5 is None and verify is None:
        _warn(f"no known md5 for {dest.name}: integrity NOT verified "
             f"(md5 of what was downloaded: {digest})")
    elif md5 is not None and digest != md5:
        part.unlink()
        raise ChecksumError(
            f"md5 mismatch for {dest.name}: expected {md5}, got {digest}. "
            f"The corrupt download was deleted; re-run to fetch it again."
        )
    os.replace(part, dest)
    return dest
