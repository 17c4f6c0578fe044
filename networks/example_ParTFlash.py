"""weaver network file: ParTFlash, ParT with a fused attention kernel that keeps U.

FlexAttention (U as a ``score_mod``) on CUDA and for CPU inference; SDPA flash/efficient when U is
off; SDPA elsewhere (see partx/nn/flex_attention.py, ``last_kernel`` says which ran). FlexAttention
has no dropout, so attention dropout is 0 here (the other ParT dropouts are unchanged).
"""

from partx.models.weaver_net import part_network

get_model, get_loss = part_network(mixer="flex", block_params={"attn_dropout": 0.0})
