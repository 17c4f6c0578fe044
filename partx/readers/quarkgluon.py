"""Quark-gluon jets (EnergyFlow's Pythia 8 set, Zenodo record 3164691) -> parquet files of data/QuarkGluon.

Original format (energyflow.datasets.qg_jets): ``QG_jets.npz``, ``QG_jets_1.npz`` ... ``QG_jets_19.npz``,
each with ``X`` (N, M, 4) = (pt, rapidity, phi, pdgid) per particle, zero-padded to the file's largest
multiplicity M, and ``y`` (N,) = 1 for quark, 0 for gluon jets. As the official ParT conversion
(``utils/convert_qg_datasets.py``), particles are treated as massless with eta = rapidity, the first
90% of the files (natural order) become ``train_file_<i>.parquet`` and the rest ``test_file_<i>.parquet``,
and the particle-ID fields of the qg_kinpid / qg_kinpidplus configs are derived from the pdgid.

    python -m partx.readers.quarkgluon -i DIR_WITH_NPZ -o OUT_DIR [--train-fraction 0.9]
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np

from partx.cli import ArgumentParser, UserError, run_main, writable_dir
from partx.readers.jet_benchmarks import ConversionError, jet_records, write_parquet

PATTERN = "QG_jets*.npz"
TRAIN_FRACTION = 0.9

#: pdgid groups (charge sign: +1 for the listed ids, -1 for their antiparticles as in the official conversion)
_CH_HAD = (211, 321, 2212)
_NEU_HAD = (130, 2112, -2112)


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"([0-9]+)", path.name)]


def find_originals(folder: str | Path) -> list[Path]:
    """The ``QG_jets*.npz`` files of ``folder`` in natural order (QG_jets, QG_jets_1, ..., QG_jets_19)."""
    folder = Path(folder)
    return sorted(folder.glob(PATTERN), key=_natural_key) if folder.is_dir() else []


def read_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(X (N, M, 4), y (N,)) of one original file; ConversionError naming what is wrong."""
    try:
        with np.load(path) as f:
            if "X" not in f or "y" not in f:
                raise ConversionError(f"{path}: expected arrays X and y (EnergyFlow QG_jets format), found {list(f.keys())}")
            X, y = f["X"], f["y"]
    except ConversionError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy/zipfile raise many types for a damaged file
        raise ConversionError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    if X.ndim != 3 or X.shape[2] != 4 or y.shape != (X.shape[0],):
        raise ConversionError(f"{path}: X must be (N, M, 4) and y (N,), got X {X.shape}, y {y.shape}")
    return X, y


def transform(X: np.ndarray, y: np.ndarray) -> dict:
    """Parquet fields of one file.

    Args:
        X: (N, M, 4) (pt, rapidity, phi, pdgid), zero-padded; y: (N,) 1 quark / 0 gluon.
    """
    import awkward as ak

    X = X.astype(np.float32)  # the official conversion works in float32
    order = np.argsort(-X[:, :, 0], axis=1, kind="stable")
    pt, eta, phi, pid = (np.take_along_axis(X[:, :, k], order, axis=1) for k in range(4))
    mask = pt > 0
    v = jet_records(pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta), mask, y)
    counts = mask.sum(axis=1)
    flat = pid[mask]

    def jag(values):
        return ak.unflatten(np.asarray(values, dtype=np.float32), counts)

    def one_of(ids):
        return np.isin(flat, ids)

    plus_ch, minus_ch = one_of(_CH_HAD), one_of([-i for i in _CH_HAD])
    e_plus, e_minus, mu_plus, mu_minus = flat == -11, flat == 11, flat == -13, flat == 13
    v["part_pid"] = jag(flat)
    v["part_isChargedHadron"] = jag(plus_ch | minus_ch)
    v["part_isNeutralHadron"] = jag(one_of(_NEU_HAD))
    v["part_isPhoton"] = jag(flat == 22)
    v["part_isElectron"] = jag(e_plus | e_minus)
    v["part_isMuon"] = jag(mu_plus | mu_minus)
    v["part_charge"] = jag((plus_ch.astype(np.float32) + e_plus + mu_plus) - (minus_ch.astype(np.float32) + e_minus + mu_minus))
    return v


def convert_dir(inputdir: str | Path, outputdir: str | Path, train_fraction: float = TRAIN_FRACTION,
                log=print) -> list[Path]:
    """Convert every ``QG_jets*.npz`` of ``inputdir``; returns the parquet files written."""
    sources = find_originals(inputdir)
    if not sources:
        raise ConversionError(f"no {PATTERN} files in {inputdir} (EnergyFlow quark-gluon originals, Zenodo record 3164691)")
    n_train = int(train_fraction * len(sources))
    if len(sources) > 1 and n_train in (0, len(sources)):
        n_train = max(1, min(len(sources) - 1, n_train))  # both splits need a file
    writable_dir(outputdir)
    out = []
    from tqdm import tqdm

    for k, src in enumerate(tqdm(sources, desc="QuarkGluon files", unit="file", disable=len(sources) < 2)):
        split, idx = ("train_file", k) if k < n_train else ("test_file", k - n_train)
        X, y = read_npz(src)
        out.append(write_parquet(Path(outputdir) / f"{split}_{idx}.parquet", transform(X, y)))
    log(f"{len(out)} parquet files in {outputdir} ({n_train} train, {len(out) - n_train} test)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m partx.readers.quarkgluon", description=__doc__.split("\n\n")[0])
    p.add_argument("-i", "--inputdir", required=True, help=f"folder with the {PATTERN} originals")
    p.add_argument("-o", "--outputdir", required=True, help="folder for train_file_*.parquet / test_file_*.parquet")
    p.add_argument("--train-fraction", type=float, default=TRAIN_FRACTION, help="fraction of the files for training")
    args = p.parse_args(argv)
    if not 0 < args.train_fraction < 1 or math.isnan(args.train_fraction):
        raise UserError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    convert_dir(args.inputdir, args.outputdir, args.train_fraction)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
