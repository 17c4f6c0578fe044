"""Read TrackML events (real or generated) and ``detectors.csv``, checking columns and dtypes.

Files are ``<dir>/event%09d-{hits,cells,particles,truth}.csv`` or ``.csv.gz`` (as the official
LAL/trackml-library ``trackml/dataset.py`` globs them). Every column of ``schema.DTYPES`` must be present
and convertible to its dtype without loss; anything else (missing file, two candidates, unreadable or
truncated file, missing column, text or NaN in a numeric column, fractional ids) raises
:class:`TrackMLFormatError` naming the file and the column — a ``partx.cli.UserError`` (one line, exit 2).
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from partx.cli import UserError
from partx.datagen.trackml import schema

_EVENT_RE = re.compile(r"^event(\d{9})-(hits|cells|particles|truth)\.csv(\.gz)?$")


class TrackMLFormatError(UserError):
    """A TrackML CSV is missing, unreadable, or lacks / mistypes a column."""


def _find(prefix: Path, part: str) -> Path:
    cands = [p for p in (prefix.parent / f"{prefix.name}-{part}.csv", prefix.parent / f"{prefix.name}-{part}.csv.gz")
             if p.is_file()]
    if not cands:
        raise TrackMLFormatError(f"{prefix}-{part}.csv[.gz] does not exist")
    if len(cands) > 1:
        raise TrackMLFormatError(f"both {cands[0]} and {cands[1]} exist: keep one")
    return cands[0]


def read_csv_checked(path: str | os.PathLike, dtypes: dict[str, np.dtype],
                     optional: dict[str, np.dtype] | None = None) -> pd.DataFrame:
    """Read one CSV and return exactly the columns of ``dtypes`` (+ present ``optional`` ones), typed.

    Args:
        path: ``.csv`` or ``.csv.gz`` file.
        dtypes: required column -> dtype, in output order.
        optional: columns kept (and typed) when present.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, header=0, index_col=False, low_memory=False)
    except FileNotFoundError:
        raise TrackMLFormatError(f"{path} does not exist") from None
    except pd.errors.EmptyDataError:
        raise TrackMLFormatError(f"{path} is empty (no header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
        msg = " ".join(str(err).split())
        raise TrackMLFormatError(f"{path} is not a readable CSV: {type(err).__name__}: {msg}") from None
    missing = [c for c in dtypes if c not in df.columns]
    if missing:
        raise TrackMLFormatError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(map(str, df.columns))})")
    want = dict(dtypes)
    for c, dt in (optional or {}).items():
        if c in df.columns:
            want[c] = dt
    out = {}
    for c, dt in want.items():
        out[c] = _convert(df[c], dt, path, c)
    return pd.DataFrame(out)


def _convert(s: pd.Series, dt: np.dtype, path: Path, col: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
        first = s[bad].iloc[0] if bad.any() else s.iloc[0]
        row = int(np.argmax(bad.to_numpy()))
        raise TrackMLFormatError(f"{path}: column {col} has non-numeric value {first!r} (row {row})")
    v = s.to_numpy()
    if pd.isna(v).any():
        raise TrackMLFormatError(f"{path}: column {col} has empty / NaN values (row {int(np.argmax(pd.isna(v)))})")
    if dt.kind in "iu":
        if v.dtype.kind == "f":
            if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
                raise TrackMLFormatError(f"{path}: column {col} must be integer ({dt}), found fractional values")
        info = np.iinfo(dt)
        if v.size and (v.min() < info.min or v.max() > info.max):
            raise TrackMLFormatError(f"{path}: column {col} has values outside {dt}")
    elif not np.all(np.isfinite(v)):
        raise TrackMLFormatError(f"{path}: column {col} has non-finite values")
    return v.astype(dt)


def event_prefix_path(prefix_or_dir: str | os.PathLike, event_id: int | None = None) -> Path:
    """``dir`` + ``event_id`` -> ``dir/event%09d``; a prefix (``.../event000001000``) is returned as is."""
    p = Path(prefix_or_dir)
    if event_id is None:
        if p.is_dir():
            raise TrackMLFormatError(f"{p} is a directory: give an event id as well")
        return p
    return p / schema.event_prefix(int(event_id))


def read_event(prefix_or_dir: str | os.PathLike, event_id: int | None = None,
               parts: tuple[str, ...] = schema.PARTS) -> dict[str, pd.DataFrame]:
    """Read one event's CSVs into ``{part: DataFrame}`` with TrackML's columns and dtypes.

    Args:
        prefix_or_dir: the event prefix (``dir/event000001000``) or the directory (then give ``event_id``).
        event_id: the event number when a directory is given.
        parts: which of hits, cells, particles, truth to read.
    """
    prefix = event_prefix_path(prefix_or_dir, event_id)
    out = {}
    for part in parts:
        if part not in schema.DTYPES:
            raise ValueError(f"unknown TrackML part {part!r}: choose from {schema.PARTS}")
        out[part] = read_csv_checked(_find(prefix, part), schema.DTYPES[part], schema.OPTIONAL.get(part))
    return out


def list_events(directory: str | os.PathLike, parts: tuple[str, ...] = ("hits",)) -> list[int]:
    """Sorted ids of the events in ``directory`` that have a file for every one of ``parts``."""
    d = Path(directory)
    if not d.is_dir():
        raise TrackMLFormatError(f"{d} is not a directory of TrackML events")
    have: dict[int, set[str]] = {}
    for name in os.listdir(d):
        m = _EVENT_RE.match(name)
        if m:
            have.setdefault(int(m.group(1)), set()).add(m.group(2))
    return sorted(e for e, ps in have.items() if set(parts) <= ps)


def read_detectors(path: str | os.PathLike) -> pd.DataFrame:
    """Read a TrackML ``detectors.csv`` (or a directory holding one) with its 21 columns checked and typed.

    Rows are unique by (volume_id, layer_id, module_id); a duplicate is a format error.
    """
    p = Path(path)
    if p.is_dir():
        cands = [q for q in (p / "detectors.csv", p / "detectors.csv.gz") if q.is_file()]
        if not cands:
            raise TrackMLFormatError(f"{p} holds no detectors.csv")
        p = cands[0]
    df = read_csv_checked(p, schema.DETECTOR_DTYPES)
    dup = df.duplicated(["volume_id", "layer_id", "module_id"])
    if dup.any():
        r = df[dup].iloc[0]
        raise TrackMLFormatError(f"{p}: module (volume {r.volume_id}, layer {r.layer_id}, module {r.module_id}) "
                                 "appears twice")
    if len(df) == 0:
        raise TrackMLFormatError(f"{p} has no modules")
    return df
