"""QuarkGluon / TopLandscape: the parquet files the data configs read, made from the public originals.

Both benchmarks are published as fixed-size arrays of particles; the official ParT repository
(jet-universe/particle_transformer, ``utils/convert_qg_datasets.py`` and ``utils/convert_top_datasets.py``)
converts them to jagged parquet files with one record per jet. This module is the shared part of that
conversion, re-implemented with numpy + awkward (no ``vector`` dependency) and checked against the
official converter's output (tests/fixtures/jet_benchmarks/MAKE.md):

* particles are the non-padding rows (QG: pT > 0, TL: E > 0), sorted by decreasing pT for QG (TL files are
  already ordered), as 4-vectors ``part_px, part_py, part_pz, part_energy`` (float32);
* the jet is the sum of its particles: ``jet_pt, jet_eta, jet_phi, jet_energy, jet_mass, jet_nparticles``;
* ``part_deta`` = (eta - jet eta) * sign(jet eta) (sign 0 counts as +1), ``part_dphi`` = phi - jet phi in [-pi, pi);
* ``label``: the original's label (QG: 1 quark, 0 gluon; TL: ``is_signal_new``, 1 top, 0 QCD).

The readers of each format are partx.readers.quarkgluon and partx.readers.toplandscape; the
launcher's data hook (``launcher_data_dir``) converts or generates on first use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import awkward as ak
import numpy as np

from partx.cli import UserError

#: where ``get_datasets.py --local-only`` and the data hook look for the original files: DATADIR/original
ORIGINAL_SUBDIR = "original"


class ConversionError(UserError, ValueError):
    """An original file that cannot be converted (one ``ERROR:`` line, exit 2)."""


def _wrap(dphi: np.ndarray) -> np.ndarray:
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def jet_records(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray, mask: np.ndarray,
                label: np.ndarray) -> dict:
    """The parquet fields of jets given as padded particle arrays.

    Args:
        px, py, pz, e: (N, M) particle 4-vectors (padding rows arbitrary); mask: (N, M) real particles,
        already in the output order; label: (N,).
    Returns:
        {field: (N,) numpy array or (N, var) awkward array}.
    """
    counts = mask.sum(axis=1)
    if np.any(counts == 0):
        raise ConversionError(f"{int((counts == 0).sum())} jets have no particles")
    if not all(np.isfinite(a[mask]).all() for a in (px, py, pz, e)):
        raise ConversionError("non-finite particle momenta (NaN or inf)")
    f32 = [np.where(mask, a, 0).astype(np.float32) for a in (px, py, pz, e)]
    # the jet sums in float32, as the official conversion (its inputs are float32 arrays)
    jpx, jpy, jpz, je = (a.sum(axis=1, dtype=np.float32) for a in f32)
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / jpt)
    jphi = np.arctan2(jpy, jpx)
    jmass = np.sqrt(np.maximum(je.astype(np.float64) ** 2 - jpx.astype(np.float64) ** 2
                               - jpy.astype(np.float64) ** 2 - jpz.astype(np.float64) ** 2, 0.0)).astype(np.float32)
    ppx, ppy, ppz, pe = (a[mask] for a in f32)
    ppt = np.hypot(ppx, ppy)
    peta = np.arcsinh(ppz / ppt)
    pphi = np.arctan2(ppy, ppx)
    jet_of = np.repeat(np.arange(len(counts)), counts)
    sign = np.where(np.sign(jeta) == 0, 1.0, np.sign(jeta)).astype(np.float32)

    def jag(flat):
        return ak.unflatten(np.asarray(flat, dtype=np.float32), counts)

    return {
        "label": np.asarray(label),
        "jet_pt": jpt, "jet_eta": jeta, "jet_phi": jphi, "jet_energy": je, "jet_mass": jmass,
        "jet_nparticles": counts.astype(np.int64),
        "part_px": jag(ppx), "part_py": jag(ppy), "part_pz": jag(ppz), "part_energy": jag(pe),
        "part_deta": jag((peta - jeta[jet_of]) * sign[jet_of]),
        "part_dphi": jag(_wrap(pphi - jphi[jet_of])),
    }


def write_parquet(path: str | os.PathLike, fields: dict) -> Path:
    """One parquet file of jet records, written atomically (LZ4, as the official converters)."""
    from partx.atomic import atomic_path

    with atomic_path(path) as tmp:
        ak.to_parquet(ak.Array(fields), str(tmp), compression="LZ4", compression_level=4)
    return Path(path)


def converted(datadir: str | os.PathLike, layout) -> bool:
    """True if ``datadir`` holds the parquet files of every split of ``layout`` (train, val if any, test)."""
    import glob

    splits = [s for s in (layout.train, layout.val, layout.test) if s]
    return all(glob.glob(layout.split_glob(str(datadir), s)) for s in splits)


def quarkgluon_data_dir(datadir: str, features: str, default_datadir: str, dry_run: bool = False) -> Path:
    """``find_data`` of the QuarkGluon layout (see :func:`launcher_data_dir`)."""
    return launcher_data_dir("quarkgluon", datadir, default_datadir, dry_run)


def toplandscape_data_dir(datadir: str, features: str, default_datadir: str, dry_run: bool = False) -> Path:
    """``find_data`` of the TopLandscape layout (see :func:`launcher_data_dir`)."""
    return launcher_data_dir("toplandscape", datadir, default_datadir, dry_run)


def launcher_data_dir(dataset: str, datadir: str, default_datadir: str, dry_run: bool = False,
                      generate_jets: int | None = None) -> Path:
    """The data folder ``./train_QuarkGluon.sh`` / ``./train_TopLandscape.sh`` read (``dataset``: quarkgluon,
    toplandscape; the layouts' ``find_data``).

    A folder with the converted parquet files is used as is. One with the public originals under
    ``original/`` (or in the folder itself) is converted first. When ``datadir`` is the untouched default
    and holds neither, a small generated set (partx.datagen ``--preset tiny``, or ``generate_jets``) is
    made under ``original/`` and converted, with a line saying so. Any other folder without data is left
    to the launcher's error, which says how to get data. ``dry_run``: nothing is converted or made.
    """
    from partx.dataset_layouts import QUARKGLUON, TOPLANDSCAPE
    from partx.readers import quarkgluon, toplandscape

    layout, reader = (QUARKGLUON, quarkgluon) if dataset == "quarkgluon" else (TOPLANDSCAPE, toplandscape)
    root = Path(datadir).expanduser()
    is_default = os.path.normpath(datadir) == os.path.normpath(default_datadir)
    if converted(root, layout) or dry_run:
        return root
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    originals = reader.find_originals(root / ORIGINAL_SUBDIR) or reader.find_originals(root)
    if originals:
        log(f"converting the {layout.name} originals in {originals[0].parent} to parquet ({reader.__name__})")
        reader.convert_dir(originals[0].parent, root, log=log)
        return root
    if not is_default:
        return root
    from partx.datagen import benchmarks

    log(f"no {layout.name} data in {datadir} (${layout.datadir_var}): generating a small set there "
        f"(python -m partx.datagen {dataset} --preset tiny; get the real data with ./get_datasets.py {layout.name})")
    benchmarks.generate(dataset, root / ORIGINAL_SUBDIR, generate_jets, preset="tiny", progress=True, log=log)
    reader.convert_dir(root / ORIGINAL_SUBDIR, root, log=log)
    return root
