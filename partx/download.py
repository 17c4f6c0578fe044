"""Dataset download helpers used by ``get_datasets.py``.

Everything here is standard library (plus an optional ``tqdm`` progress bar):

* :func:`download_file` -- HTTP(S) download into ``NAME.part`` with resume via
  ``Range`` requests, md5 verification, and an atomic rename to ``NAME`` only
  after the checksum matched.  Connection failures (DNS, refused, unreachable,
  connect timeout) fail fast with :class:`NetworkUnreachableError`.
* :func:`safe_extract` -- tar / zip extraction that refuses absolute paths,
  ``..`` components, special files and links that point outside the target;
  the archive is unpacked into a temporary directory first and only moved into
  place when everything succeeded.
* :func:`update_env_file` -- rewrites ``export VAR=...`` in ``env.sh`` in place
  (atomic write, all other lines untouched).
* :func:`fetch_dataset` -- ties the three together for one entry of a dataset
  registry (:data:`REGISTRY` by default; any mapping of :class:`DatasetSpec`
  can be injected, which is what the tests do).

The file URLs, md5 sums and the directory layout of JetClass / QuarkGluon /
TopLandscape follow the official Particle Transformer repository
(jet-universe/particle_transformer, ``get_datasets.py``); see
``docs/datasets.md`` for sources and caveats.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import posixpath
import re
import shlex
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping, Sequence

__all__ = [
    "MIRROR_ENV",
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "DownloadError",
    "UsageError",
    "UnknownDatasetError",
    "NetworkUnreachableError",
    "TransferInterruptedError",
    "ChecksumError",
    "UnsafeArchiveError",
    "RemoteFile",
    "DatasetSpec",
    "REGISTRY",
    "resolve_dataset",
    "md5sum",
    "download_file",
    "safe_extract",
    "update_env_file",
    "fetch_dataset",
]

#: Environment variable that overrides the base URL of every dataset file
#: (same effect as ``get_datasets.py --mirror URL``).
MIRROR_ENV = "PARTX_DATASET_MIRROR"

#: Seconds allowed to establish a connection (DNS + TCP + TLS).
CONNECT_TIMEOUT = 15.0
#: Seconds a transfer may stall (no bytes received) before it counts as interrupted.
READ_TIMEOUT = 60.0

_USER_AGENT = "partx-get-datasets/0.1 (python-urllib)"
_CHUNK = 1 << 20

Log = Callable[[str], None]


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
class DownloadError(RuntimeError):
    """Expected failure of a dataset download; the message is user facing."""


class UsageError(DownloadError):
    """Bad request from the caller (unknown dataset / subset)."""


class UnknownDatasetError(UsageError):
    pass


class NetworkUnreachableError(DownloadError):
    """The server could not be reached at all (offline, DNS, refused, ...)."""


class TransferInterruptedError(DownloadError):
    """The connection broke mid-transfer; the ``.part`` file is kept for resuming."""


class ChecksumError(DownloadError):
    """md5 of the downloaded file does not match the registry."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written (or link) outside the target directory."""


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a dataset.

    ``extract_to`` is relative to the dataset directory (``DATA_DIR/<subdir>``)
    and may be ``..`` for archives that carry their own top-level directory.
    ``md5=None`` means no checksum is known: the file is downloaded but not
    verified, and a warning is printed.
    """

    name: str
    url: str
    md5: str | None = None
    subset: str = "all"
    extract_to: str = "."
    extract: bool = True
    default: bool = True

    def url_for(self, mirror: str | None, dataset: str = "") -> str:
        if not mirror:
            return self.url
        base = mirror.replace("{dataset}", dataset)
        return base.rstrip("/") + "/" + urllib.parse.quote(self.name)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: tuple[RemoteFile, ...]
    homepage: str = ""
    description: str = ""
    #: text printed before anything is downloaded (manual steps, caveats)
    notes: str = ""
    #: appended to network errors: how to get the data without this script
    offline_hint: str = ""
    env_var: str = ""
    subdir: str = ""

    @property
    def variable(self) -> str:
        return self.env_var or f"DATADIR_{self.name}"

    @property
    def directory(self) -> str:
        return self.subdir or self.name

    @property
    def subsets(self) -> list[str]:
        seen: list[str] = []
        for f in self.files:
            if f.subset not in seen:
                seen.append(f.subset)
        return seen

    def select(self, subsets: Sequence[str] | None = None) -> list[RemoteFile]:
        if not subsets:
            return [f for f in self.files if f.default]
        wanted = list(dict.fromkeys(subsets))
        if "all" in wanted:
            return list(self.files)
        unknown = [s for s in wanted if s not in self.subsets]
        if unknown:
            raise UsageError(
                f"unknown subset(s) {', '.join(map(repr, unknown))} for {self.name}; "
                f"choose from: {', '.join(self.subsets)} (or 'all')"
            )
        return [f for f in self.files if f.subset in wanted]


_ZENODO_JETCLASS = "https://zenodo.org/record/6619768/files/"
_JETCLASS_TRAIN_MD5 = (
    "de4fd2dca2e68ab3c85d5cfd3bcc65c3",
    "9722a359c5ef697bea0fbf79bf50f003",
    "1e9f66cd1f915f9d10e90ae1d7761720",
    "47348fc8985319fa4806da87500482fa",
    "6b0ce16bd93b442a8d51914466990279",
    "416e347512e716de51d392bee327b8e9",
    "e9b9c1557b1b39bf0a16e4ab631ae451",
    "5bfc6cb285ccb7680cefa9ac82ad1a2e",
    "540c1a0d66dfad78d2b363c5740ccf86",
    "668f40b3275167ff7104c48317c0ae2a",
)


def _jetclass_files() -> tuple[RemoteFile, ...]:
    files = [
        RemoteFile(
            name=f"JetClass_Pythia_train_100M_part{i}.tar",
            url=f"{_ZENODO_JETCLASS}JetClass_Pythia_train_100M_part{i}.tar",
            md5=md5,
            subset="train",
            extract_to="Pythia/train_100M",
        )
        for i, md5 in enumerate(_JETCLASS_TRAIN_MD5)
    ]
    files.append(RemoteFile(
        name="JetClass_Pythia_val_5M.tar",
        url=f"{_ZENODO_JETCLASS}JetClass_Pythia_val_5M.tar",
        md5="7235ccb577ed85023ea3ab4d5e6160cf",
        subset="val",
        extract_to="Pythia",
    ))
    files.append(RemoteFile(
        name="JetClass_Pythia_test_20M.tar",
        url=f"{_ZENODO_JETCLASS}JetClass_Pythia_test_20M.tar",
        md5="64e5156d26d101adeb43b8388207d767",
        subset="test",
        extract_to="Pythia",
    ))
    return tuple(files)


_HEPT_ZENODO = "https://zenodo.org/records/10694703"

_COPY_BY_HAND = (
    "download the file(s) on a machine with internet access ({urls}), copy them "
    "into {dsdir}/ and re-run this command (files already present are checked "
    "against their md5 and not downloaded again), or point --mirror / ${env} at "
    "a server that has a copy."
)

REGISTRY: dict[str, DatasetSpec] = {
    "JetClass": DatasetSpec(
        name="JetClass",
        homepage="https://zenodo.org/record/6619768",
        description="JetClass (Qu, Li, Qian 2022): 10 jet classes, 100M train / 5M val / "
                    "20M test jets, ROOT files (MadGraph + Pythia + Delphes).",
        files=_jetclass_files(),
        offline_hint=(
            "Without network access you can\n"
            "  * generate a small dataset in the same format locally:\n"
            "        python -m partx.datagen jetclass --out {dsdir_rel} --preset small\n"
            "  * or " + _COPY_BY_HAND
        ),
    ),
    "QuarkGluon": DatasetSpec(
        name="QuarkGluon",
        homepage="https://zenodo.org/record/3164691",
        description="Pythia8 quark/gluon jets (Komiske, Metodiev, Thaler), converted to "
                    "parquet by the ParT authors.",
        files=(RemoteFile(
            name="QuarkGluon.tar",
            url="https://hqu.web.cern.ch/datasets/QuarkGluon/QuarkGluon.tar",
            md5="d8dd7f71a7aaaf9f1d2ee3cddef998f9",
            extract_to="..",
        ),),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
    "TopLandscape": DatasetSpec(
        name="TopLandscape",
        homepage="https://zenodo.org/record/2603256",
        description="Top quark tagging reference dataset (Kasieczka et al.), converted "
                    "to parquet by the ParT authors.",
        files=(RemoteFile(
            name="TopLandscape.tar",
            url="https://hqu.web.cern.ch/datasets/TopLandscape/TopLandscape.tar",
            md5="4fca2e47afbf321b0f201da6b804c404",
            extract_to="..",
        ),),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
    "TrackML": DatasetSpec(
        name="TrackML",
        homepage="https://www.kaggle.com/c/trackml-particle-identification",
        description="TrackML particle tracking challenge; HEPT's pre-processed "
                    "point clouds (tracking-6k / tracking-60k).",
        files=(
            RemoteFile(
                name="tracking-6k-processed.zip",
                url=f"{_HEPT_ZENODO}/files/tracking-6k-processed.zip",
                md5=None,
                subset="tracking-6k",
                extract_to="processed",
            ),
            RemoteFile(
                name="tracking-60k-processed.zip",
                url=f"{_HEPT_ZENODO}/files/tracking-60k-processed.zip",
                md5=None,
                subset="tracking-60k",
                extract_to="processed",
                default=False,
            ),
        ),
        notes=(
            "TrackML sources:\n"
            "  * raw challenge data (accuracy phase): "
            "https://www.kaggle.com/c/trackml-particle-identification/data\n"
            "    needs a Kaggle account that accepted the competition rules, so it "
            "cannot be fetched anonymously. By hand:\n"
            "        kaggle competitions download -c trackml-particle-identification "
            "-p {dsdir}/raw\n"
            "    (train_sample.zip = first 100 events, train_1..5.zip = 8850 events, "
            "test.zip, detectors.zip); unzip the event CSVs into {dsdir}/raw_events/.\n"
            "  * throughput-phase copy on Zenodo: https://zenodo.org/records/4730157\n"
            "  * HEPT pre-processed point clouds (downloaded now): "
            f"{_HEPT_ZENODO} -> {{dsdir}}/processed/\n"
            "    tracking-6k by default, add '--subsets tracking-60k' for the large one "
            "(HEPT warns ~65 GB after extraction).\n"
            "  * md5 sums of the HEPT archives are not published in HEPT's code, so they are NOT "
            "verified by default; compare with the md5 listed on the Zenodo record page and "
            "pin it with --checksum FILE=MD5."
        ),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
    "Pileup": DatasetSpec(
        name="Pileup",
        homepage="https://github.com/Graph-COM/HEPT",
        description="HEPT pileup-mitigation dataset (Delphes ttbar + pileup, PF "
                    "candidates labelled LV/PU), pre-processed for PyG.",
        files=(RemoteFile(
            name="pileup-10k-processed.zip",
            url=f"{_HEPT_ZENODO}/files/pileup-10k-processed.zip",
            md5=None,
            subset="pileup-10k",
            extract_to="processed",
        ),),
        notes=(
            "Pileup sources:\n"
            f"  * HEPT pre-processed dataset (downloaded now): {_HEPT_ZENODO} -> "
            "{dsdir}/processed/ (HEPT warns ~11 GB after extraction).\n"
            "  * the raw Delphes ROOT files HEPT starts from (testTTbar_part1.root, "
            "testTTbar_part2.root) have no public download URL we could confirm; if you "
            "have them, put them in {dsdir}/raw/.\n"
            "  * md5 sums of the HEPT archives are not published in HEPT's code, so they are NOT "
            "verified by default; compare with the md5 listed on the Zenodo record page and "
            "pin it with --checksum FILE=MD5."
        ),
        offline_hint="Without network access you can " + _COPY_BY_HAND,
    ),
}


def resolve_dataset(name: str, registry: Mapping[str, DatasetSpec] | None = None) -> DatasetSpec:
    """Look a dataset up by name (case-insensitive)."""
    registry = REGISTRY if registry is None else registry
    if name in registry:
        return registry[name]
    folded = {k.lower(): k for k in registry}
    if name.lower() in folded:
        return registry[folded[name.lower()]]
    raise UnknownDatasetError(
        f"unknown dataset {name!r}; choose one of: {', '.join(registry)}"
    )


# --------------------------------------------------------------------------- #
# download
# --------------------------------------------------------------------------- #
def _warn(msg: str) -> None:
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)


def md5sum(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _build_opener(read_timeout: float) -> urllib.request.OpenerDirector:
    """urllib opener whose sockets switch to ``read_timeout`` once connected.

    ``urlopen(timeout=...)`` then only bounds connection set-up, so a dead
    host fails after the short connect timeout while a slow-but-alive
    transfer is allowed to stall for longer.
    """

    class _HTTPConnection(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            self.sock.settimeout(read_timeout)

    class _HTTPSConnection(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            self.sock.settimeout(read_timeout)

    class _HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(_HTTPConnection, req)

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(_HTTPSConnection, req, context=self._context)

    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)


_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH,
    errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT, errno.EADDRNOTAVAIL,
}


def _is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, (socket.gaierror, ConnectionRefusedError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS


def _unreachable(url: str, reason: BaseException | str) -> NetworkUnreachableError:
    host = urllib.parse.urlsplit(url).netloc or url
    return NetworkUnreachableError(
        f"network unreachable: could not connect to {host} ({reason}). "
        f"Check your internet connection / proxy settings."
    )


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Restart(Exception):
    """Internal: discard the partial file and start again from byte 0."""


def _open(opener, url: str, offset: int, connect_timeout: float):
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        return opener.open(req, timeout=connect_timeout)
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, BaseException) and _is_unreachable(reason):
            raise _unreachable(url, reason) from None
        raise DownloadError(f"cannot open {url}: {reason}") from None
    except (http.client.HTTPException, OSError) as e:
        if _is_unreachable(e):
            raise _unreachable(url, e) from None
        raise DownloadError(f"cannot open {url}: {e}") from None


def _transfer_once(url, part: Path, *, opener, connect_timeout, progress, chunk_size, log) -> str:
    """One HTTP request appending to ``part``; returns the md5 of the whole file."""
    offset = part.stat().st_size if part.exists() else 0
    hasher = hashlib.md5()
    if offset:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(chunk_size), b""):
                hasher.update(block)

    try:
        resp = _open(opener, url, offset, connect_timeout)
    except urllib.error.HTTPError as e:
        code = e.code
        crange = e.headers.get("Content-Range", "") if e.headers else ""
        e.close()
        if code == 416 and offset:
            m = re.search(r"/(\d+)", crange)
            if m and int(m.group(1)) == offset:
                return hasher.hexdigest()  # the partial file is already complete
            raise _Restart(f"server rejected resume range (HTTP 416)")
        raise DownloadError(f"HTTP {code} {e.reason} for {url}") from None

    with resp:
        status = getattr(resp, "status", None) or resp.getcode()
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and status == 206:
            m = _CONTENT_RANGE.search(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise _Restart("server answered the resume request with a different range")
            total = int(m.group(3)) if m.group(3) != "*" else (
                offset + length if length is not None else None)
            mode = "ab"
            log(f"  resuming {part.name[:-5]} at byte {offset}")
        elif status == 200:
            if offset:
                log(f"  server ignored the Range request; restarting {part.name[:-5]} from scratch")
                offset = 0
                hasher = hashlib.md5()
            total = length
            mode = "wb"
        else:
            raise DownloadError(f"unexpected HTTP status {status} for {url}")

        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - offset > free:
                raise DownloadError(
                    f"not enough disk space in {part.parent} for {part.name[:-5]}: "
                    f"need {total - offset} more bytes, {free} free"
                )

        bar = None
        if progress:
            try:
                from tqdm import tqdm
                bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                           unit_divisor=1024, desc=part.name[:-5], leave=True)
            except ImportError:  # pragma: no cover - tqdm is a dependency
                bar = None
        received = offset
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        block = resp.read(chunk_size)
                    except (OSError, http.client.HTTPException) as e:
                        raise TransferInterruptedError(
                            f"transfer of {part.name[:-5]} interrupted after {received} bytes "
                            f"({type(e).__name__}: {e})"
                        ) from None
                    if not block:
                        break
                    fh.write(block)
                    hasher.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()

    if total is not None and received < total:
        raise TransferInterruptedError(
            f"transfer of {part.name[:-5]} interrupted after {received} of {total} bytes"
        )
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
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify ``md5``, rename.

    * An existing ``dest`` whose md5 matches is kept (no network access).
    * Bytes go to ``dest.part``; an interrupted transfer leaves it in place and
      the next call resumes with ``Range: bytes=N-``.  ``retries`` extra
      attempts are made automatically within this call.
    * If the server ignores ``Range`` (HTTP 200) the partial file is discarded
      and the download restarts cleanly.
    * On md5 mismatch the partial file is deleted and :class:`ChecksumError`
      names the file and both checksums.  ``dest`` only ever appears after a
      successful verification (``os.replace``).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    md5 = md5.lower() if md5 else None

    if force:
        for p in (dest, part):
            if p.exists():
                p.unlink()
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

    opener = _build_opener(read_timeout)
    attempt = 0
    restarted = False
    log(f"  downloading {url}\n    -> {dest}")
    while True:
        try:
            digest = _transfer_once(url, part, opener=opener, connect_timeout=connect_timeout,
                                    progress=progress, chunk_size=chunk_size, log=log)
            break
        except _Restart as why:
            if restarted:
                raise DownloadError(f"could not resume {dest.name}: {why}") from None
            restarted = True
            log(f"  {why}; restarting {dest.name} from scratch")
            if part.exists():
                part.unlink()
        except TransferInterruptedError as e:
            if attempt >= retries:
                raise TransferInterruptedError(
                    f"{e}. The partial file {part} was kept: re-run the same command to resume."
                ) from None
            attempt += 1
            log(f"  {e}; retrying ({attempt}/{retries}) and resuming")
            if retry_wait:
                time.sleep(retry_wait)

    if md5 is None:
        _warn(f"no known md5 for {dest.name}: integrity NOT verified "
              f"(md5 of what was downloaded: {digest})")
    elif digest != md5:
        part.unlink()
        raise ChecksumError(
            f"md5 mismatch for {dest.name}: expected {md5}, got {digest}. "
            f"The corrupt download was deleted; re-run to fetch it again."
        )
    os.replace(part, dest)
    return dest


# --------------------------------------------------------------------------- #
# safe extraction
# --------------------------------------------------------------------------- #
_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_name(name: str, archive: Path) -> None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise UnsafeArchiveError(f"{archive.name}: refusing absolute member path {name!r}")
    if ".." in PurePosixPath(norm).parts:
        raise UnsafeArchiveError(f"{archive.name}: refusing member path with '..': {name!r}")


def _escapes(path: str) -> bool:
    norm = posixpath.normpath(path)
    return norm == ".." or norm.startswith("../") or norm.startswith("/")


def _check_link(name: str, target: str, archive: Path, *, hard: bool) -> None:
    t = target.replace("\\", "/")
    if t.startswith("/") or _DRIVE.match(t):
        raise UnsafeArchiveError(
            f"{archive.name}: refusing link {name!r} -> absolute target {target!r}")
    resolved = t if hard else posixpath.join(posixpath.dirname(name.replace("\\", "/")), t)
    if _escapes(resolved):
        raise UnsafeArchiveError(
            f"{archive.name}: refusing link {name!r} -> {target!r} pointing outside the target")


def _archive_kind(path: Path) -> str | None:
    n = path.name.lower()
    if n.endswith(".zip"):
        return "zip"
    if re.search(r"\.(tar|tgz|tbz2?|txz)(\.(gz|bz2|xz))?$", n):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    return None


def _extract_tar(archive: Path, tmp: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                _check_name(m.name, archive)
                if m.issym():
                    _check_link(m.name, m.linkname, archive, hard=False)
                elif m.islnk():
                    _check_name(m.linkname, archive)
                    _check_link(m.name, m.linkname, archive, hard=True)
                elif not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(
                        f"{archive.name}: refusing special file member {m.name!r}")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(tmp, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tf.extractall(tmp, members=members)
    except UnsafeArchiveError:
        raise
    except tarfile.TarError as e:
        if hasattr(tarfile, "FilterError") and isinstance(e, tarfile.FilterError):
            raise UnsafeArchiveError(f"{archive.name}: {e}") from None
        raise DownloadError(f"cannot extract {archive}: {e}") from None


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_name(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    target = zf.read(info).decode("utf-8", "replace")
                    _check_link(info.filename, target, archive, hard=False)
            zf.extractall(tmp, members=infos)
    except UnsafeArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DownloadError(f"cannot extract {archive}: {e}") from None


def _verify_tree(root: Path, archive: Path) -> None:
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                real = os.path.realpath(p)
                if os.path.commonpath([real_root, real]) != real_root:
                    raise UnsafeArchiveError(
                        f"{archive.name}: link {os.path.relpath(p, root)!r} resolves outside the target")


def _merge_move(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink() and dst.is_dir():
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
    """Extract a tar or zip archive into ``dest`` safely; return top-level names.

    Every member is checked first; absolute paths, ``..`` components, links
    whose target leaves ``dest`` and device/fifo members raise
    :class:`UnsafeArchiveError` before anything is written.  Extraction goes
    to a temporary directory inside ``dest`` which is merged into ``dest``
    only after the whole archive was unpacked; on any error it is removed.
    """
    archive = Path(archive)
    dest = Path(dest)
    kind = _archive_kind(archive)
    if kind is None:
        raise DownloadError(f"{archive} is neither a tar nor a zip archive")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partx-extract-", dir=dest))
    try:
        (_extract_tar if kind == "tar" else _extract_zip)(archive, tmp)
        _verify_tree(tmp, archive)
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:
            _merge_move(tmp / name, dest / name)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- #
# env.sh
# --------------------------------------------------------------------------- #
def update_env_file(path: str | os.PathLike, var: str, value: str) -> Path:
    """Set ``export VAR=value`` in a shell env file, in place and atomically.

    Every existing ``VAR=`` / ``export VAR=`` line is replaced (so a later
    duplicate cannot override it); all other bytes of the file are kept.  If
    no such line exists it is appended.  A missing file is created.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise ValueError(f"invalid variable name {var!r}")
    path = Path(path)
    real = Path(os.path.realpath(path))
    text = ""
    if real.exists():
        with open(real, newline="") as fh:  # keep \r\n etc. exactly as they are
            text = fh.read()
    new = f"export {var}={shlex.quote(str(value))}"
    pattern = re.compile(rf"^[ \t]*(?:export[ \t]+)?{re.escape(var)}=")
    out: list[str] = []
    found = False
    for line in text.splitlines(keepends=True):
        if pattern.match(line):
            ending = line[len(line.rstrip("\r\n")):]
            out.append(new + ending)
            found = True
        else:
            out.append(line)
    if not found:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(new + "\n")

    real.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write("".join(out))
            fh.flush()
            os.fsync(fh.fileno())
        if real.exists():
            shutil.copymode(real, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, real)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return real


# --------------------------------------------------------------------------- #
# whole dataset
# --------------------------------------------------------------------------- #
def _fmt(text: str, spec: DatasetSpec, files: Iterable[RemoteFile], dsdir: Path) -> str:
    try:
        rel = os.path.relpath(dsdir)
        rel = str(dsdir) if rel.startswith("..") else "./" + rel
    except ValueError:  # different drive (Windows)
        rel = str(dsdir)
    urls = ", ".join(f.url for f in files)
    return (text.replace("{dsdir_rel}", rel).replace("{dsdir}", str(dsdir))
                .replace("{urls}", urls).replace("{env}", MIRROR_ENV))


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
    """Download, verify and unpack one dataset; update ``env_file``; return its directory.

    ``mirror`` (or ``$PARTX_DATASET_MIRROR``) replaces every file URL by
    ``<mirror>/<file name>`` (``{dataset}`` in the mirror is replaced by the
    dataset name).  ``checksums`` maps file names to md5 sums and overrides
    the registry (useful for files whose md5 the registry does not know).
    A per-file marker ``.<file>.done`` in the dataset directory makes re-runs
    skip files that were already extracted; ``force`` ignores the markers and
    downloads again.
    """
    spec = resolve_dataset(name, registry)
    files = spec.select(subsets)
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    base = Path(data_dir).expanduser().resolve()
    dsdir = base / spec.directory
    checksums = {k: v for k, v in (checksums or {}).items()}

    log(f"{spec.name}: {len(files)} file(s) -> {dsdir}")
    if spec.notes:
        log(_fmt(spec.notes, spec, files, dsdir))

    for f in files:
        md5 = checksums.get(f.name, f.md5)
        marker = dsdir / f".{f.name}.done"
        if marker.exists() and not force:
            log(f"  {f.name}: already downloaded and extracted (remove {marker.name} or use --force to redo)")
            continue
        archive = dsdir / f.name
        url = f.url_for(mirror, spec.name)
        try:
            download_file(url, archive, md5, force=force, retries=retries, retry_wait=retry_wait,
                          connect_timeout=connect_timeout, read_timeout=read_timeout,
                          progress=progress, log=log)
        except NetworkUnreachableError as e:
            hint = _fmt(spec.offline_hint, spec, files, dsdir) if spec.offline_hint else ""
            raise NetworkUnreachableError(f"{e}\n{hint}".rstrip()) from None
        if f.extract:
            target = (dsdir / f.extract_to).resolve()
            log(f"  extracting {f.name} -> {target}")
            safe_extract(archive, target)
        marker.write_text((md5 or "unverified") + "\n")
        if f.extract and not keep_archives:
            archive.unlink()

    if env_file is not None:
        update_env_file(env_file, spec.variable, str(dsdir))
        log(f"Updated {env_file}: export {spec.variable}={dsdir}")
    return dsdir
