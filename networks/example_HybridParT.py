"""weaver network file: HybridParT, MambaParT's Mamba blocks with one attention-with-U block in the middle.

The jet analogue of Mamba-a (Mamba blocks + one attention block; Jamba's 1:7 layout, attention at offset
4 of 8): every particle block is MambaParT's bidirectional Mamba over pT-ordered particles except block
``num_layers // 2`` (4 of 8), which is ParT's attention with the pairwise bias U. The pair physics that
MambaParT lacks (ΔR, kT, z, m²) enters once, for the cost of one (N, N) attention and one U, computed for
that block only. ``-o num_layers 4`` moves the attention to block 2. Place it elsewhere with
``-o block_mixers``, one mixer name per particle block, e.g. first:
``-o block_mixers "['sdpa','mamba','mamba','mamba','mamba','mamba','mamba','mamba']"``. See docs/hybrid.md.
"""

from partx.models.weaver_net import MAMBA_PART_DEFAULTS, PART_DEFAULTS, part_network


def middle_attention(num_layers: int) -> list[str]:
    """Mamba in every particle block except block ``num_layers // 2``: attention with U ("sdpa")."""
    return ["sdpa" if i == num_layers // 2 else "mamba" for i in range(num_layers)]


_get_model, get_loss = part_network(**MAMBA_PART_DEFAULTS)


def get_model(data_config, **kwargs):
    """weaver's entry point; ``block_mixers`` defaults to ``middle_attention(num_layers)``."""
    if "block_mixers" not in kwargs:
        kwargs["block_mixers"] = middle_attention(kwargs.get("num_layers", PART_DEFAULTS["num_layers"]))
    return _get_model(data_config, **kwargs)
