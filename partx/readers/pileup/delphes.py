"""Read the particle-flow candidates of Delphes-style ROOT files by logical member name, in either layout.

* Real Delphes (HEPT's ``testTTbar_part{1,2}.root``): a ``TClonesArray`` branch ``PF`` split into
  ``PF.PT``, ``PF.Eta``, ...; uproot paths ``PF/PF.PT`` (what HEPT's ``prepare_dataset`` reads).
* partx's generator (``partx.datagen.pileup.writer``): top-level jagged branches ``PF.PT``, ... with the
  counter ``PF_size`` (uproot cannot write ``TClonesArray`` splits).
* uproot's default naming of a record ``PF`` (``PF_PT``, counter ``nPF``) is accepted too.

``FIELDS`` are the members HEPT reads; each is looked up as ``PF/PF.X``, ``PF.X`` then ``PF_X``.
Problems (missing or unreadable file, no ``Delphes`` tree, a missing member) raise ``RawFileError``,
a ``partx.cli.UserError`` naming the file and what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np

from partx.cli import UserError

TREE = "Delphes"
BRANCH = "PF"
#: the PF members HEPT's src/datasets/pileup.py prepare_dataset reads
FIELDS = ("PT", "Eta", "Phi", "Charge", "IsPU", "PID", "Rapidity", "E", "Px", "Py")
FLOAT_FIELDS = ("PT", "Eta", "Phi", "Rapidity", "E", "Px", "Py")


class RawFileError(UserError):
    """A raw pileup file that is missing, unreadable, or lacks a PF member."""


def candidate_paths(field: str, branch: str = BRANCH) -> tuple[str, ...]:
    """Branch paths that may hold member ``field``: real Delphes, partx's writer, uproot's default."""
    return (f"{branch}/{branch}.{field}", f"{branch}.{field}", f"{branch}_{field}")


def open_tree(path: str | os.PathLike):
    """The ``Delphes`` tree of ``path`` (RawFileError if missing or unreadable)."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise RawFileError(f"raw pileup file {path} does not exist")
    try:
        f = uproot.open(path)
    except Exception as err:  # noqa: BLE001 - any uproot failure means a corrupt / non-ROOT file
        raise RawFileError(f"{path} is not a readable ROOT file ({type(err).__name__}: {err})") from None
    try:
        return f[TREE]
    except Exception:  # noqa: BLE001
        raise RawFileError(f"{path} has no '{TREE}' tree (keys: {', '.join(f.keys()[:8]) or 'none'})") from None


def resolve(tree, path: str | os.PathLike, fields: tuple[str, ...] = FIELDS) -> dict[str, str]:
    """{logical member: branch path in this file}; RawFileError names the first member not found."""
    out = {}
    for name in fields:
        for cand in candidate_paths(name):
            try:
                tree[cand]
            except Exception:  # noqa: BLE001 - uproot raises KeyInFileError; try the next layout
                continue
            out[name] = cand
            break
        else:
            raise RawFileError(f"{path}: PF member '{name}' not found (looked for "
                               f"{', '.join(candidate_paths(name))} in tree '{TREE}')")
    return out


def iterate(path: str | os.PathLike, step: int = 200) -> Iterator[tuple[int, dict[str, ak.Array]]]:
    """(first entry, {member: jagged array}) chunks of ``step`` events of one file."""
    tree = open_tree(path)
    paths = resolve(tree, path)
    inverse = {v: k for k, v in paths.items()}
    n = tree.num_entries
    for start in range(0, n, step):
        try:
            arr = tree.arrays(list(paths.values()), entry_start=start, entry_stop=min(n, start + step), how=dict)
        except Exception as err:  # noqa: BLE001 - truncated baskets, decompression errors
            raise RawFileError(f"{path}: cannot read entries {start}..{min(n, start + step) - 1} "
                               f"({type(err).__name__}: {err})") from None
        yield start, {inverse[k]: v for k, v in arr.items()}


def num_entries(path: str | os.PathLike) -> int:
    """Number of events of a raw file (checks that it opens and has every member)."""
    tree = open_tree(path)
    resolve(tree, path)
    return int(tree.num_entries)


def event_arrays(chunk: dict[str, ak.Array], i: int) -> dict[str, np.ndarray]:
    """Event ``i`` of a chunk as numpy arrays."""
    return {k: ak.to_numpy(v[i]) for k, v in chunk.items()}
