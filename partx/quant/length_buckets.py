"""Length-bucketed inference: run a batch as sub-batches of jets of similar multiplicity.

A padded batch costs what its longest jet costs: weaver's ParT trims trailing padding to the batch's longest
jet (``SequenceTrimmer``), ``OrtModel`` does the same before the ONNX Runtime call, and everything after runs
at that length (the pair embedding of an exported graph at its square). JetClass multiplicities spread from
~10 to 128, so in a batch of 64 jets the longest is far above the mean. Sorting the jets by length and
running consecutive groups of ``size`` cuts each group at its own longest jet. In eval mode a jet's output
does not depend on its batch mates (BatchNorm uses running statistics; trimming removes only padding), so
the outputs are the same as one call on the whole batch, returned in the input order (tested).

This is a runtime choice, not a model change: it applies to torch models and ``OrtModel`` alike, and the
benchmark's ``--length-buckets`` wraps every row of a run so ratios stay like for like.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["LengthBuckets", "mask_index", "real_lengths"]


def real_lengths(mask: torch.Tensor) -> torch.Tensor:
    """(B,) last real position + 1 of each jet of a (B, C, N) mask (0 for an empty jet)."""
    real = (mask != 0).any(dim=1)  # (B, N)
    pos = torch.arange(1, real.shape[-1] + 1, device=mask.device)
    return (real * pos).amax(dim=-1)


class LengthBuckets(nn.Module):
    """``model`` run on length-sorted sub-batches of ``size`` jets; outputs in the input order.

    Args:
        model: ``forward(*inputs) -> (B, ...)``, every input (B, ...) with the batch first.
        mask_index: position of the (B, C, N) particle mask among the inputs (JetClass: 3, ``pf_mask``).
        size: jets per sub-batch; batches of at most ``size`` jets go through unchanged.
    """

    def __init__(self, model: nn.Module, mask_index: int, size: int):
        super().__init__()
        if size < 1:
            raise ValueError(f"length bucket size must be >= 1 jet, got {size}")
        self.model, self.mask_index, self.size = model, mask_index, size

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        mask = args[self.mask_index]
        if mask.dim() != 3:
            raise ValueError(f"input {self.mask_index} should be the (B, C, N) particle mask, got shape {tuple(mask.shape)}")
        batch = mask.shape[0]
        if batch <= self.size:
            return self.model(*args)
        order = torch.argsort(real_lengths(mask), stable=True)
        outs = [self.model(*(a[idx] for a in args)) for idx in order.split(self.size)]
        out = torch.cat(outs)
        result = torch.empty_like(out)
        result[order] = out
        return result


def mask_index(input_names: Sequence[str]) -> int:
    """Position of the particle mask among weaver input names (the one whose name contains 'mask')."""
    found = [i for i, n in enumerate(input_names) if "mask" in n.lower()]
    if not found:
        raise ValueError(f"no input named '*mask*' among {list(input_names)}: length buckets need the particle mask")
    return found[0]
