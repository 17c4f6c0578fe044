"""The tracking checkpoints of models/: data, budget and one recipe per model (family ``tracking``).

The budget is the tracking comparison's (``analysis/tracking_compare.py``, docs/tracking_models.md "Trained
comparison"): generated TrackML events at pileup mu = 40 (``partx.datagen trackml``, seed 11, 30 events:
24 / 3 / 3 train / val / test by event id), the ``3k`` set (20 phi sectors per event, one row per sector), the
S models, 2 epochs of 160 sectors (20 for validation), batch 4, Adam at the registry's rate, ``-o seed 1``
(initial weights, LSH projections). weaver's file order is not seeded, so a rebuild differs within the
seed-to-seed spread of that comparison, not bit for bit.

The check subset is the last test event alone (event 1029, 20 sectors), regenerated from (seed, event id):
the generator makes each event from those two numbers only, so it is the same event as in the full set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

#: the generated data every tracking recipe trains and is tested on
DATA = MappingProxyType(dict(generator="partx.datagen trackml", events=30, pileup=40, seed=11, first_event=1000,
                             set="3k", split=dict(train="1000-1023", val="1024-1026", test="1027-1029")))
#: the check subset: the last test event, on its own, its first ``max_rows`` sectors
CHECK = MappingProxyType(dict(first_event=1029, events=1, max_rows=20, batch_size=4))
#: launcher knobs (environment) of every recipe, as analysis/tracking_compare.py sets them
KNOBS = MappingProxyType(dict(NUM_EPOCHS="2", SAMPLES_PER_EPOCH="160", SAMPLES_PER_EPOCH_VAL="20", BATCH_SIZE="4", GPUS=""))
#: |measured - card| allowed when the same weights are re-scored on the same rows (float rounding between
#: machines and batch layouts: measured 0.0002 between batch 1 and 4 for HEPT on 20 sectors)
CHECK_TOLERANCE = 0.003
#: the spread a rebuild may show (std over seeds 1-3 of accuracy@0.9 in the comparison, the largest model's)
REBUILD_SPREAD = 0.02


@dataclass(frozen=True)
class TrackingRecipe:
    """One tracking checkpoint: name in models/, the registry model (dataset trackml), ``-o`` options."""

    name: str
    model: str
    options: Mapping[str, Any] = field(default_factory=lambda: {"seed": 1, "size": "S"})  # the comparison's -o order
    about: str = ""


RECIPES = MappingProxyType({r.name: r for r in (
    TrackingRecipe("HEPT-S_gen-mu40_3k", "HEPT", about="HEPT at size S (LSH block attention)"),
    TrackingRecipe("Mamba-S_gen-mu40_3k", "Mamba", about="bidirectional Mamba, stored hit order, size S"),
    TrackingRecipe("MambaA-S_gen-mu40_3k", "MambaA", about="Mamba-a: Mamba-2 + shared HEPT attention, size S"),
    TrackingRecipe("MambaB-S_gen-mu40_3k", "MambaB", about="Mamba-b: OR & AND E2LSH orders + Mamba, size S"),
)})


def data_commands(out: str) -> list[str]:
    """The commands making the training data in ``out`` (what the card records)."""
    return [f"python -m partx.datagen trackml --out {out}/raw_events --events {DATA['events']} --pileup {DATA['pileup']} "
            f"--seed {DATA['seed']}",
            f"python -m partx.readers.trackml preprocess --raw {out}/raw_events --out {out} --sets {DATA['set']}"]


def check_commands(out: str) -> list[str]:
    """The commands making the check subset in ``out`` (one event: preprocessing puts it in the test split)."""
    return [f"python -m partx.datagen trackml --out {out}/raw_events --events {CHECK['events']} --first-event "
            f"{CHECK['first_event']} --pileup {DATA['pileup']} --seed {DATA['seed']}",
            f"python -m partx.readers.trackml preprocess --raw {out}/raw_events --out {out} --sets {DATA['set']}"]


#: the check files under the folder ``check_commands`` made
CHECK_FILES = f"processed/{DATA['set']}/*/*.root"
