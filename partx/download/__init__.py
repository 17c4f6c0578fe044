"""Dataset downloader behind ``get_datasets.py``.

* :mod:`~partx.download.registry` -- dataset name -> files, URLs, md5 sums, notes.
* :mod:`~partx.download.transport` -- HTTP download (``requests``, (connect, read) timeouts)
  with resume and md5 verification before the final rename.
* :mod:`~partx.download.extract` -- tar/zip extraction that stays inside the target.
* :mod:`~partx.download.envfile` -- ``export DATADIR_<Name>=...`` in env.sh, atomically.
* :mod:`~partx.download.fetch` -- all of it for one dataset, after checking the request.
"""

from partx.download.envfile import update_env_file
from partx.download.errors import (
    ChecksumError,
    DownloadError,
    NetworkUnreachableError,
    TransferInterruptedError,
    UnknownDatasetError,
    UnsafeArchiveError,
    UsageError,
)
from partx.download.extract import safe_extract
from partx.download.fetch import fetch_dataset
from partx.download.registry import MIRROR_ENV, REGISTRY, DatasetSpec, RemoteFile, resolve_dataset
from partx.download.transport import CONNECT_TIMEOUT, READ_TIMEOUT, download_file

__all__ = [
    "CONNECT_TIMEOUT", "READ_TIMEOUT", "MIRROR_ENV", "REGISTRY",
    "ChecksumError", "DownloadError", "NetworkUnreachableError", "TransferInterruptedError",
    "UnknownDatasetError", "UnsafeArchiveError", "UsageError",
    "DatasetSpec", "RemoteFile", "resolve_dataset",
    "download_file", "fetch_dataset", "safe_extract", "update_env_file",
]
