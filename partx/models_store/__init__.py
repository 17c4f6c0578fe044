"""models/: trained checkpoints with model cards, and the official ParT / ParticleNet weights.

* :mod:`~partx.models_store.card` -- the YAML model card (network, options, data config, weights' sha256,
  data, command, hardware, time, metrics).
* :mod:`~partx.models_store.loader` -- ``load(name_or_path) -> (model, card)``; a mismatch is one error.
* :mod:`~partx.models_store.evaluate` -- scores and card metrics on JetClass-format files.
* :mod:`~partx.models_store.official` -- fetch and verify the ParT repository's JetClass checkpoints.
* :mod:`~partx.models_store.recipes` / :mod:`~partx.models_store.build` -- ``make models``.
* :mod:`~partx.models_store.families` -- card families (jets, tracking, pileup): how each is scored and checked;
  :mod:`~partx.models_store.rows` (weaver's test-time rows), :mod:`~partx.models_store.tracking`,
  :mod:`~partx.models_store.pileup` (their scorers), :mod:`~partx.models_store.recipes_tracking` /
  :mod:`~partx.models_store.build_tracking` (the tracking checkpoints).

See docs/models.md.
"""

from partx.models_store.card import CardError, ModelCard, read_card
from partx.models_store.loader import available, load, models_dir, resolve_card

__all__ = ["CardError", "ModelCard", "available", "load", "models_dir", "read_card", "resolve_card"]
