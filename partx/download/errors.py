"""Errors of the dataset downloader; every message is meant for the user, one line."""

from __future__ import annotations

from partx.cli import UserError


class DownloadError(RuntimeError):
    """Expected failure of a dataset download (get_datasets.py: exit 1, no traceback)."""


class UsageError(UserError):
    """Bad request, found before anything is downloaded (partx.cli.run_main: one line, exit 2)."""


class UnknownDatasetError(UsageError):
    """The dataset name is not in the registry."""


class NetworkUnreachableError(DownloadError):
    """The server could not be reached at all (offline, DNS, refused, connect timeout)."""


class TransferInterruptedError(DownloadError):
    """The connection broke mid-transfer; the ``.part`` file is kept for resuming."""


class ChecksumError(DownloadError):
    """md5 of the downloaded file does not match the registry."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written, or would link, outside the target directory."""
