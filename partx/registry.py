"""The model registry: every trainable model name, its weaver network file and its defaults.

One entry per (dataset family, name) that ``train_*.sh``, ``analysis/benchmark.py``,
``analysis/profile_model.py`` and the studies accept; README's model table is checked against it
(tests/test_registry.py). A name is unique within a dataset family: the tracking encoders are registered
for TrackML and, under the same names with their own network files, for pileup (``./train_Pileup.sh
MambaB``); ``get(name, dataset)`` picks one, ``get(name)`` the name's first registration (its primary
family, what the family-less tools -- benchmark, attention maps -- mean by the name).

A name maps to a network file in ``networks/`` (what weaver loads with ``--network-config``) plus
``options``: ``-o key value`` overrides given to that file's ``get_model`` on top of its own
defaults. Variants that differ only by options (ParT-plain, the demo-sized ParT) are entries with
the same network file and different options, so each is defined here and nowhere else.

Training defaults follow the official ParT ``train_JetClass.sh`` (ParT family: batch 512, lr 1e-3;
ParticleNet 512 / 1e-2; PFN, P-CNN 4096 / 2e-2).

Where the network files are: the folder named by ``$PARTX_NETWORKS`` if set, else ``networks/``
beside the ``partx`` package (a source checkout or an editable install). A wheel install has no
network files; ``networks_dir`` then raises and names the variable to set.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: dataset families a model can be registered for; each has its own train_*.sh (see partx.launcher)
DATASET_FAMILIES = ("jetclass", "quarkgluon", "topland", "trackml", "pileup")

#: jet-tagging families: same weaver inputs (pf_points, pf_features, pf_vectors, pf_mask), so every
#: model registered for "jetclass" trains on all of them; the others also get ``<name>-FineTune``.
JET_FAMILIES = ("jetclass", "quarkgluon", "topland")
FINETUNE_SUFFIX = "-FineTune"
#: fine-tuning as the official ParT train_QuarkGluon.sh / train_TopLandscape.sh: start lr /10 (ParT 1e-4,
#: ParticleNet 1e-3), the new head's lr x50 (weaver ``--optimizer-option lr_mult``), no lr schedule
FINETUNE_LR_DIVISOR = 10
FINETUNE_HEAD_LR_MULT = 50


class RegistryError(ValueError):
    """Unknown model name, or the network files cannot be found (CLIs: one line, exit 2)."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    ``needs_max_len``: its ``get_model`` takes ``max_len`` (a parameterisation fixed to the input
    length: Linformer's projections, Reformer's bucket count), so tools that vary N must pass it.
    ``amp``: train with ``--use-amp`` on GPU (the attention models, as in the official scripts).
    ``head``: regex (``re.match``, weaver's convention) of the classification head's parameter names,
    the only weights whose shape depends on the number of classes; fine-tuning re-initialises them
    (tests/test_quarkgluon_toplandscape.py checks it against the built models).
    ``weight_decay``: AdamW-style decay the official QuarkGluon / TopLandscape scripts give ParT (0.01);
    applied on the layouts that ask for it (not JetClass, whose official script has none).
    ``finetune``: a ``<name>-FineTune`` entry: starts from a JetClass checkpoint (PRETRAINED=).
    """

    name: str
    network: str                      # file name in networks/
    about: str                        # one line for --help and README
    batch_size: int
    lr: float
    dataset: str = "jetclass"
    options: Mapping[str, Any] = field(default_factory=dict)
    amp: bool = False
    needs_max_len: bool = False
    head: str = r"mod\.fc\."
    weight_decay: float = 0.0
    finetune: bool = False

    def __post_init__(self):
        if self.dataset not in DATASET_FAMILIES:
            raise ValueError(f"{self.name}: unknown dataset family {self.dataset!r}")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def network_path(self) -> Path:
        return networks_dir() / self.network

    def weaver_options(self) -> list[str]:
        """``options`` as weaver ``-o key value`` arguments (values are Python literals, as weaver
        ``ast.literal_eval``-s them)."""
        return [a for k, v in self.options.items() for a in ("-o", k, repr(v))]


_PART = dict(batch_size=512, lr=1e-3, weight_decay=0.01)
_TRACK = dict(batch_size=4, lr=1e-3)
_PART_NET = "example_ParticleTransformer.py"

#: The demo-sized ParT of ``make demo`` and the training-size study: 4 particle blocks, embeddings
#: [64,256,64], U from a 2x32 pair embedding, 4 heads (the paper's ParT: 8, [128,512,128], 3x64, 8).
PART_DEMO_OPTIONS = {"num_layers": 4, "embed_dims": [64, 256, 64], "pair_embed_dims": [32, 32], "num_heads": 4}

_ENTRIES = (
    ModelEntry("ParT", _PART_NET, "Particle Transformer, full attention + pairwise bias U (SDPA)", amp=True, **_PART),
    ModelEntry("ParT-plain", _PART_NET, "ParT without U (the paper's control)",
               options={"pair_embed_dims": None}, amp=True, **_PART),
    ModelEntry("ParT-demo", _PART_NET, "CPU-sized ParT of `make demo` and the training-size study",
               options=PART_DEMO_OPTIONS, amp=True, **_PART),
    # weaver's later ParT block defaults (partx.models.part.version_block_defaults), paper size otherwise
    ModelEntry("ParT-v2", _PART_NET, "ParT with weaver's version 2 block defaults", options={"version": 2}, amp=True, **_PART),
    ModelEntry("ParT-v3", _PART_NET, "ParT with weaver's version 3 block defaults", options={"version": 3}, amp=True, **_PART),
    ModelEntry("ParTFlash", "example_ParTFlash.py",
               "fused FlexAttention kernel that keeps U (CUDA; SDPA fallback elsewhere)", amp=True, **_PART),
    ModelEntry("LinformerParT", "example_LinformerParT.py",
               "low-rank (k=32) keys/values, U projected with the key projection",
               amp=True, needs_max_len=True, **_PART),
    ModelEntry("ReformerParT", "example_ReformerParT.py",
               "LSH attention (buckets of 16, 2 rounds), U gathered for the computed pairs",
               needs_max_len=True, **_PART),
    ModelEntry("LocalParT", "example_LocalParT.py",
               "attention over the k=16 nearest neighbours in Delta R, U evaluated only for those pairs",
               amp=True, **_PART),
    ModelEntry("MambaParT", "example_MambaParT.py", "bidirectional Mamba over pT-ordered particles (no U)", **_PART),
    ModelEntry("HybridParT", "example_HybridParT.py",
               "MambaParT's Mamba blocks + one attention-with-U block (block 4 of 8; Mamba-a for jets)", **_PART),
    ModelEntry("PN", "example_ParticleNet.py", "ParticleNet (weaver-core's model)", batch_size=512, lr=1e-2,
               head=r"mod\.fc\.1\."),  # the last Linear only, as the official PN fine-tuning (fc_out)
    ModelEntry("PFN", "example_PFN.py", "Particle Flow Network (Deep Sets)", batch_size=4096, lr=2e-2,
               head=r"mod\.f\.6\."),
    ModelEntry("PCNN", "example_PCNN.py", "P-CNN, 1D residual CNN over pT-ordered particles", batch_size=4096, lr=2e-2,
               head=r"mod\.head\.3\."),
    # TrackML (per-hit embeddings, InfoNCE; size S by default, -o size M|L): HEPT's tracking config uses
    # Adam at lr 1e-3 (batch 1); partx trains batches of several events or sectors.
    ModelEntry("HEPT", "example_HEPT.py", "HEPT: E2LSH (OR & AND) block attention with an RBF kernel",
               dataset="trackml", **_TRACK),
    ModelEntry("Mamba", "example_Mamba.py", "bidirectional Mamba over the hits in stored order", dataset="trackml",
               **_TRACK),
    ModelEntry("MambaA", "example_MambaA.py", "Mamba-a: Mamba-2 blocks + HEPT attention at the middle layer",
               dataset="trackml", **_TRACK),
    ModelEntry("MambaB", "example_MambaB.py", "Mamba-b: OR & AND E2LSH hit orders before Mamba blocks",
               dataset="trackml", **_TRACK),
    # pileup (per-particle LV logit, focal loss; the paper's pileup sizes, -o size S|M|L for the tracking ones):
    # HEPT's pileup config trains with Adam, lr 1e-3, batch size 1; partx batches a few events.
    ModelEntry("HEPT", "example_HEPTPileup.py", "HEPT encoder + pid embedding, one LV logit per particle",
               dataset="pileup", **_TRACK),
    ModelEntry("Mamba", "example_MambaPileup.py", "bidirectional Mamba in stored order, one LV logit per particle",
               dataset="pileup", **_TRACK),
    ModelEntry("MambaA", "example_MambaAPileup.py", "Mamba-a (24 x 8), one LV logit per particle",
               dataset="pileup", **_TRACK),
    ModelEntry("MambaB", "example_MambaBPileup.py", "Mamba-b (48 x 8), one LV logit per particle",
               dataset="pileup", **_TRACK),
)

#: every registered (dataset, name), in registry order
ENTRIES: tuple[ModelEntry, ...] = _ENTRIES
_BY_KEY = {(e.dataset, e.name): e for e in _ENTRIES}
if len(_BY_KEY) != len(_ENTRIES):  # pragma: no cover - a registry edit error, caught at import
    raise RuntimeError("partx.registry: a (dataset, name) pair is registered twice")

#: name -> its first registration (see the module doc); ``ENTRIES`` / ``get(name, dataset)`` for the others
_FIRST: dict[str, ModelEntry] = {}
for _e in _ENTRIES:
    _FIRST.setdefault(_e.name, _e)
MODELS: Mapping[str, ModelEntry] = MappingProxyType(_FIRST)


def _trains_on(entry: ModelEntry, dataset: str) -> bool:
    return entry.dataset == dataset or (entry.dataset == "jetclass" and dataset in JET_FAMILIES)


def names(dataset: str | None = None) -> list[str]:
    """Registered names, in registry order, each once; only those that train on ``dataset`` if given (on
    QuarkGluon / TopLandscape: every jet model, then its ``-FineTune`` variant)."""
    if dataset is None:
        return list(MODELS)
    own = list(dict.fromkeys(e.name for e in _ENTRIES if _trains_on(e, dataset)))
    if dataset in JET_FAMILIES and dataset != "jetclass":
        own += [n + FINETUNE_SUFFIX for n in own if _BY_KEY.get(("jetclass", n)) is not None]
    return own


def finetune_entry(base: ModelEntry) -> ModelEntry:
    """``<base>-FineTune``: the same network and options, lr / FINETUNE_LR_DIVISOR, loads a checkpoint."""
    return dataclasses.replace(base, name=base.name + FINETUNE_SUFFIX, lr=base.lr / FINETUNE_LR_DIVISOR,
                               about=f"{base.name} fine-tuned from a JetClass checkpoint", finetune=True)


def get(name: str, dataset: str | None = None) -> ModelEntry:
    """The entry for ``name`` in ``dataset`` (the name's first registration when ``dataset`` is None; a
    JetClass model also trains on QuarkGluon / TopLandscape, and ``<name>-FineTune`` there); RegistryError
    naming the choices if unknown (or not registered for that dataset)."""
    if dataset is None:
        entry = MODELS.get(name)
    else:
        entry = _BY_KEY.get((dataset, name))
        if entry is None and dataset in JET_FAMILIES:
            entry = _BY_KEY.get(("jetclass", name))
            if entry is None and dataset != "jetclass" and name.endswith(FINETUNE_SUFFIX):
                base = _BY_KEY.get(("jetclass", name[: -len(FINETUNE_SUFFIX)]))
                entry = finetune_entry(base) if base is not None else None
    if entry is None:
        raise RegistryError(f"invalid model {name!r}: choose one of {' '.join(names(dataset))}")
    return entry


def networks_dir() -> Path:
    """The folder holding the weaver network files (see the module docstring)."""
    env = os.environ.get("PARTX_NETWORKS")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "networks"
    if not path.is_dir():
        how = "PARTX_NETWORKS points to" if env else "no networks/ folder beside the partx package:"
        raise RegistryError(f"{how} {path}; set PARTX_NETWORKS to the folder with the example_*.py network files")
    return path


def find_by_network(path: str | os.PathLike) -> ModelEntry | None:
    """The option-free entry whose network file is ``path`` (a registered file given by path), else None."""
    try:
        target = Path(path).resolve()
        base = networks_dir()
    except RegistryError:
        return None
    for entry in _ENTRIES:
        if not entry.options and (base / entry.network).resolve() == target:
            return entry
    return None
