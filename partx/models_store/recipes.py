"""What ``make models`` trains: the data, the budget and one recipe per committed checkpoint.

The budget is the variant-accuracy protocol of the README (``scripts/variant_study.sh``): the generated
``small`` JetClass preset (seed 0: 800 / 200 / 200 jets per class for train / val / test), ``full``
features, 3 epochs of 8,000 jets, batch 128, the registry's learning rate, the attention models at the
demo size (4 blocks, 64-wide, 4 heads, U from a 2x32 pair embedding). On two busy CPU cores each model
trains in minutes and ends clearly above chance (0.10 over ten classes); it is a reproducible reference,
not the paper's models (use ``python -m partx.models_store fetch`` for those).

weaver seeds nothing; ``PARTX_SEED`` (partx.weaver_run) fixes the initial weights and the shuffling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from partx.registry import PART_DEMO_OPTIONS

#: the generated data every recipe trains and is evaluated on (python -m partx.datagen jetclass ...)
DATA = MappingProxyType(dict(generator="partx.datagen jetclass", preset="small", seed=0,
                             jets_per_class={"train": 800, "val": 200, "test": 200}, features="full"))

#: the fixed check subset each card also records and tests/test_models_store.py regenerates: its own seed,
#: test split only, 20 jets per class (``--jets-per-class 80`` gives a test split of ceil(80 / 4) = 20)
CHECK = MappingProxyType(dict(seed=7, jets_per_class_arg=80, split="test", jets_per_class=20))

#: launcher knobs (environment) shared by every recipe; GPUS empty: CPU
KNOBS = MappingProxyType(dict(NUM_EPOCHS="3", SAMPLES_PER_EPOCH="8000", SAMPLES_PER_EPOCH_VAL="2000",
                              BATCH_SIZE="128", DATAOPTS="--num-workers 1 --fetch-step 1 --in-memory",
                              GPUS="", PARTX_SEED="1"))

#: the demo size without U (ParT-plain and MambaParT have no pair embedding)
_DEMO_NO_U = {k: v for k, v in PART_DEMO_OPTIONS.items() if k != "pair_embed_dims"}


@dataclass(frozen=True)
class Recipe:
    """One checkpoint: its name in models/, the registry model it trains and ``-o`` options on top."""

    name: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    about: str = ""
    default: bool = True    # built by a plain `make models`; False: only when named (too slow for 2 CPU cores)


RECIPES = MappingProxyType({r.name: r for r in (
    Recipe("ParT_gen-small_full", "ParT", PART_DEMO_OPTIONS, "ParT at the demo size (with U)"),
    Recipe("ParT-plain_gen-small_full", "ParT-plain", _DEMO_NO_U, "ParT without U at the demo size"),
    # measured on the shared 2-core machine (docs/models.md): MambaParT's CPU scan ~21 s per batch of 128 (about
    # 70 min for the budget), ParticleNet's kNN EdgeConvs ~69 s (17-23 s on a quieter core: 76 min): built only when
    # named, or on a GPU
    Recipe("MambaParT_gen-small_full", "MambaParT", _DEMO_NO_U, "bidirectional Mamba, pT order, demo size", False),
    # the efficient variant that meets issue 16's speed targets (1.9x / 1.25x ParT at batch 64, full / fill 0.4):
    # its accuracy against ParT's under the multi-seed protocol is not yet measured (docs/variant_accuracy.md)
    Recipe("LocalParT_gen-small_full", "LocalParT", PART_DEMO_OPTIONS,
           "ParT with attention and U over the k = 16 nearest neighbours in Delta R, demo size"),
    Recipe("PN_gen-small_full", "PN", {}, "ParticleNet at the paper's size", False),
    Recipe("PFN_gen-small_full", "PFN", {}, "Particle Flow Network at the paper's size"),
)})
