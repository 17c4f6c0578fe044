"""Top tagging landscape (Kasieczka et al., Zenodo record 2603256) -> parquet files of data/TopLandscape.

Original format: ``train.h5``, ``val.h5``, ``test.h5``, each a pandas DataFrame stored under the key
``table`` with one row per jet: ``E_i, PX_i, PY_i, PZ_i`` for the 200 leading constituents
(i = 0..199, zero-padded), ``truthE, truthPX, truthPY, truthPZ`` (the top quark; 0 for QCD), ``ttv``
(0 train, 1 test, 2 validation) and ``is_signal_new`` (1 top, 0 QCD). Reading needs pandas with
PyTables (``tables``). As the official ParT conversion (``utils/convert_top_datasets.py``), constituents
are the rows with E > 0 in stored order, and each file becomes ``{train,val,test}_file.parquet``.

    python -m partx.readers.toplandscape -i DIR_WITH_H5 -o OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from partx.cli import ArgumentParser, run_main, writable_dir
from partx.readers.jet_benchmarks import ConversionError, jet_records, write_parquet

SPLITS = ("train", "val", "test")
KEY = "table"
MAX_PARTICLES = 200
LABEL = "is_signal_new"


def columns(prefix: str, n: int = MAX_PARTICLES) -> list[str]:
    return [f"{prefix}_{i}" for i in range(n)]


def find_originals(folder: str | Path) -> list[Path]:
    """train.h5 / val.h5 / test.h5 of ``folder`` (all three, else none)."""
    folder = Path(folder)
    files = [folder / f"{s}.h5" for s in SPLITS]
    return files if all(f.is_file() for f in files) else []


def read_h5(path: str | Path):
    """The DataFrame of one original file; ConversionError naming what is wrong."""
    import pandas as pd

    try:
        df = pd.read_hdf(path, key=KEY)
    except ImportError as err:
        raise ConversionError(f"reading {path} needs PyTables: pip install tables ({err})") from None
    except KeyError:
        raise ConversionError(f"{path}: no '{KEY}' table (top-tagging landscape HDF5 format)") from None
    except Exception as err:  # noqa: BLE001 - pandas/PyTables raise many types for a damaged file
        raise ConversionError(f"{path}: not a readable HDF5 table ({type(err).__name__}: {err})") from None
    need = [LABEL] + [c for p in ("E", "PX", "PY", "PZ") for c in columns(p)]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ConversionError(f"{path}: missing columns {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return df


def transform(df) -> dict:
    """Parquet fields of one DataFrame (rows: jets; columns E_i, PX_i, PY_i, PZ_i, is_signal_new)."""
    px, py, pz, e = (df[columns(p)].to_numpy(dtype=np.float32) for p in ("PX", "PY", "PZ", "E"))
    return jet_records(px, py, pz, e, e > 0, df[LABEL].to_numpy())


def convert_dir(inputdir: str | Path, outputdir: str | Path, log=print) -> list[Path]:
    """Convert train.h5, val.h5, test.h5 of ``inputdir``; returns the parquet files written."""
    sources = find_originals(inputdir)
    if not sources:
        raise ConversionError(f"{inputdir} needs train.h5, val.h5 and test.h5 (top-tagging landscape originals, "
                              "Zenodo record 2603256)")
    writable_dir(outputdir)
    out = []
    for split, src in zip(SPLITS, sources):
        df = read_h5(src)
        out.append(write_parquet(Path(outputdir) / f"{split}_file.parquet", transform(df)))
        log(f"{src} ({len(df)} jets) -> {out[-1]}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m partx.readers.toplandscape", description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--inputdir", required=True, help="folder with train.h5, val.h5, test.h5")
    p.add_argument("-o", "--outputdir", required=True, help="folder for {train,val,test}_file.parquet")
    args = p.parse_args(argv)
    convert_dir(args.inputdir, args.outputdir)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
