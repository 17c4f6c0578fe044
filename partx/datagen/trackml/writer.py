"""Write TrackML event CSVs with the exact columns and dtypes of ``schema`` (each file atomically).

Every file goes to a hidden temporary name in the output directory and is renamed when complete
(``partx.atomic.atomic_path``), so an interrupted run never leaves a truncated CSV under a final name;
an event's four files are renamed into place together, after all four are written, and an event counts
as done only when all four exist (``event_complete``).
Floats are written as the shortest text that reads back to the same float32 (pyarrow's CSV writer,
~10x faster than pandas' ``to_csv``; pandas with 7 significant digits when pyarrow is missing).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from partx.atomic import atomic_path
from partx.datagen.trackml import schema

FLOAT_FORMAT = "%.7g"


def _write_plain(df: pd.DataFrame, path: Path, gz: bool) -> None:
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:
        df.to_csv(path, index=False, float_format=FLOAT_FORMAT, compression="gzip" if gz else None)
        return
    table = pa.Table.from_pandas(df, preserve_index=False)
    header = (",".join(map(str, df.columns)) + "\n").encode()  # pyarrow would quote the names
    with (pa.CompressedOutputStream(str(path), "gzip") if gz else pa.OSFile(str(path), "wb")) as f:
        f.write(header)
        if len(df):
            pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False, quoting_style="none"))


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` (header, no index) to ``path`` (``.csv`` or ``.csv.gz``) through a temporary file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        _write_plain(df, tmp, path.suffix == ".gz")
    return path


def typed(part: str, data: dict[str, np.ndarray] | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame with exactly ``schema.DTYPES[part]``'s columns, in order, cast to their dtypes."""
    cols = schema.DTYPES[part]
    missing = [c for c in cols if c not in data]
    if missing:
        raise KeyError(f"{part}: columns {missing} missing from the data to write")
    return pd.DataFrame({c: np.asarray(data[c]).astype(dt, copy=False) for c, dt in cols.items()})


def event_paths(out_dir: str | os.PathLike, event_id: int, gz: bool = False) -> dict[str, Path]:
    """{part: path} of one event's four files."""
    ext = ".csv.gz" if gz else ".csv"
    return {p: Path(out_dir) / f"{schema.event_prefix(event_id)}-{p}{ext}" for p in schema.PARTS}


def event_complete(out_dir: str | os.PathLike, event_id: int, gz: bool = False) -> bool:
    return all(p.is_file() for p in event_paths(out_dir, event_id, gz).values())


def write_event(out_dir: str | os.PathLike, event_id: int, parts: dict[str, dict | pd.DataFrame],
                gz: bool = False) -> dict[str, Path]:
    """Write the four CSVs of one event (hits, cells, particles, truth); returns their paths."""
    paths = event_paths(out_dir, event_id, gz)
    # all four are written under temporary names first and renamed together at the end: an interruption
    # while writing leaves none of them (only the four renames themselves are not one atomic step)
    with contextlib.ExitStack() as stack:
        for part in schema.PARTS:
            tmp = stack.enter_context(atomic_path(paths[part]))
            _write_plain(typed(part, parts[part]), tmp, gz)
    return paths
