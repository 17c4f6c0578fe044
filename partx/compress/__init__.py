"""Learned low-rank compression of the Linear layers (SoftLMs-style, arXiv:2411.10543).

    python -m partx.compress ParT-demo run/net_best_epoch_state.pt --train 'gen/Pythia/train_100M/*.root' \
        --val 'gen/Pythia/val_5M/*.root' --epochs 2 --penalty 1.0 --out run/lowrank.pt

1. ``to_svd``: each Linear (called as a module, both sides >= 16) -> ``SVDLinear`` (U, s, V and a learnable
   per-layer soft threshold on s; the exact soft function is in ``partx.compress.svd_linear``);
2. ``finetune`` with cross-entropy + penalty x soft parameter fraction (``rank_penalty``);
3. ``materialise``: each layer becomes two Linears at its learned rank (or stays dense when that saves
   nothing), optionally followed by a short recovery fine-tune; saved with ``save_compressed``;
4. ``load_compressed`` rebuilds it from the fp32 model; ``analysis/quantize.py --lowrank`` evaluates it
   beside fp32 and the int8 paths (accuracy, speed, size).
"""

from partx.compress.model import (CompressError, Compressed, load_compressed, materialise, rank_penalty,
                                  save_compressed, svd_layers, to_svd)
from partx.compress.svd_linear import LowRankLinear, SVDLinear

__all__ = ["SVDLinear", "LowRankLinear", "to_svd", "svd_layers", "rank_penalty", "materialise", "save_compressed",
           "load_compressed", "Compressed", "CompressError"]
