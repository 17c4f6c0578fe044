"""Card families: which task a checkpoint solves, hence how it is scored and what its card's metrics mean.

A card names its family (``family:``; absent means ``jets``, the first family). Loading is the same for all
(network file + ``-o`` options + data config + strict weights, partx.models_store.loader); scoring differs:

=========  ==========================================  ====================================================
family     scored by                                    headline metrics
=========  ==========================================  ====================================================
jets       ``partx.models_store.evaluate`` (JetClass)  accuracy ± binomial SE, macro OvO AUC
tracking   ``partx.models_store.tracking`` (TrackML)   HEPT's accuracy@0.9, recall@0.9 (kNN in embedding)
pileup     ``partx.models_store.pileup``                pooled ROC AUC, average precision (scored neutrals)
=========  ==========================================  ====================================================

The per-event families (tracking, pileup) share one evaluator contract, ``evaluate(model, data_config, files,
batch_size) -> metrics`` over the rows weaver's test loader makes (partx.models_store.rows), and one check
(``check_card``): the card's ``check`` block names a small regenerable file set, the rows used, the batch size,
the metrics measured on it and the tolerance; re-evaluating the weights through the card must agree.
A new family is a module with ``HEADLINE`` and ``evaluate`` and one line in ``FAMILIES``.
"""

from __future__ import annotations

import importlib
import math
from types import MappingProxyType

from partx.models_store.card import CardError, ModelCard

#: family -> the module scoring it
FAMILIES = MappingProxyType({"jets": "partx.models_store.evaluate", "tracking": "partx.models_store.tracking",
                             "pileup": "partx.models_store.pileup"})
#: the headline metrics ``list`` shows per family
JET_HEADLINE = ("accuracy", "accuracy_se")


def family(card: ModelCard) -> str:
    name = str(card.data.get("family") or "jets")
    if name not in FAMILIES:
        raise CardError(f"model card {card.path}: unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return name


def scorer(card: ModelCard):
    """The module scoring ``card``'s family (per-event families: ``evaluate`` and ``HEADLINE``)."""
    return importlib.import_module(FAMILIES[family(card)])


def headline(card: ModelCard) -> str:
    """One short text of the card's test metrics, for ``python -m partx.models_store list``."""
    if family(card) == "jets":
        acc, se = card.get("metrics.accuracy"), card.get("metrics.accuracy_se")
        if isinstance(acc, float) and isinstance(se, float):
            return f"accuracy {acc:.3f} ± {se:.3f}"
        return f"accuracy {acc} (paper)" if acc is not None else ""
    names = scorer(card).HEADLINE
    metrics = card.data.get("metrics") or {}  # names like accuracy@0.9 hold a dot: not card.get's dotted path
    vals = [(n, metrics.get(n)) for n in names]
    return "  ".join(f"{n} {v:.3f}" for n, v in vals if isinstance(v, float))


def check_card(card: ModelCard, model, data_config, files) -> tuple[dict, list[str]]:
    """Re-score a per-event card's weights on its check files; (metrics measured, disagreements beyond the
    card's tolerance). ``files``: the check block's ``files`` under the folder its ``commands`` made."""
    if family(card) == "jets":
        raise CardError("check_card is for the per-event families; jets are checked by count of right jets")
    check = card.get("check") or {}
    want, tol = check.get("metrics") or {}, check.get("tolerance")
    if not want or tol is None:
        raise CardError(f"model card {card.path} has no check metrics / tolerance")
    got = scorer(card).evaluate(model, data_config, files, batch_size=int(check.get("batch_size", 1)),
                                max_rows=check.get("max_rows"))
    bad = []
    for k, v in want.items():
        g = got.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            ok = g == v
        else:
            ok = isinstance(g, float) and math.isfinite(g) and abs(g - float(v)) <= float(tol)
        if not ok:
            bad.append(f"{k}: card {v}, measured {g}")
    return got, bad
