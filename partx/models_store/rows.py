"""Rows of ROOT files as weaver's test loader makes them, for the per-event card families (tracking, pileup).

weaver's own test-time steps (``weaver.utils.dataset``): read the data config's branches, test-time selection,
new variables, ``_finalize_inputs`` (standardise, pad to the config's length, stack): the model sees exactly
what weaver fed it. Files are read in sorted order, whole; a row is one event (pileup) or one sector (tracking).
Jets keep their own reader (``partx.interpret.jets.load_jets``: labels, per-class counts, raw particles).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator

import numpy as np
import torch

from partx.models_store.card import CardError


def expand(files: str | list[str]) -> list[str]:
    """Sorted files of a glob or list of globs / paths; CardError if none."""
    patterns = [files] if isinstance(files, str) else list(files)
    found = sorted({f for p in patterns for f in glob.glob(str(p))})
    if not found:
        raise CardError(f"no file matches {' '.join(map(str, patterns))!r}")
    return found


def read_rows(data_config, path: str) -> dict[str, np.ndarray]:
    """One file's rows: input name -> (R, C, L) float32, as weaver's test loader builds them."""
    from weaver.utils.data.fileio import _read_root
    from weaver.utils.data.preprocess import _apply_selection, _build_new_variables
    from weaver.utils.dataset import _finalize_inputs

    try:
        table = _read_root(path, sorted(data_config.test_load_branches), treename=data_config.treename,
                           branch_magic=data_config.branch_magic)
    except Exception as err:  # noqa: BLE001 - uproot raises many types for an unusable file
        raise CardError(f"cannot read {path} with the card's data config: {type(err).__name__}: "
                        f"{' '.join(str(err).split())[:160]}") from None
    table["aux_training_"] = False
    table = _apply_selection(table, data_config.test_time_selection, funcs=data_config.var_funcs)
    if len(table) == 0:
        return {k: np.zeros((0, *data_config.input_shapes[k][1:]), np.float32) for k in data_config.input_names}
    table = _build_new_variables(table, data_config.test_var_funcs)
    out = _finalize_inputs(table, data_config)
    return {k: np.asarray(out["_" + k], dtype=np.float32) for k in data_config.input_names}


def batches(data_config, files: str | list[str], batch_size: int, max_rows: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """weaver-style batches ``{input name: (B, C, L) tensor}`` over the rows of ``files`` (sorted, in order),
    the first ``max_rows`` rows only when given."""
    left = max_rows if max_rows is not None else float("inf")
    for path in expand(files):
        if left <= 0:
            return
        rows = read_rows(data_config, path)
        n = int(min(len(next(iter(rows.values()))), left))
        left -= n
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield {k: torch.from_numpy(v[start:stop]) for k, v in rows.items()}
