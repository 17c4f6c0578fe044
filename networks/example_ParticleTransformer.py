"""weaver network file: Particle Transformer (ParT), full attention with the pairwise bias U (SDPA).

``-o mixer math`` selects the explicit-softmax reference; ``-o pair_embed_dims None`` gives ParT-plain.
"""

from partx.models.weaver_net import part_network

get_model, get_loss = part_network(mixer="sdpa")
