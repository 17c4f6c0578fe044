"""weaver network file for pileup mitigation: Mamba-a: Mamba-2 blocks + a shared HEPT attention block at the middle layers, per-particle LV logit.

The tracking encoder (partx.models.tracking) with HEPT's pid_class embedding (7 -> 10) and a 1-logit head
(partx.models.pileup); focal loss on the scored neutrals; ROC AUC / AP / jet pT resolution (partx.train.pileup).
Size: the paper's pileup size by default, or -o size S|M|L; -o focal_gamma 0, -o jet_metrics False
or any TrackingConfig field (-o block_size 120). Inputs: data/Pileup/*.yaml. See docs/pileup_models.md.
"""

from partx.train.pileup import pileup_network

get_model, get_loss, get_train_fn, get_evaluate_fn = pileup_network("mamba_a")
