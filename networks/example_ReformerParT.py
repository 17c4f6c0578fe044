"""weaver network file: ReformerParT, LSH attention (buckets of 16, 2 hash rounds).

U is gathered for the (query, key) pairs each LSH chunk evaluates (partx/nn/reformer.py).
"""

from partx.models.weaver_net import part_network

get_model, get_loss = part_network(mixer="reformer", mixer_options={"bucket_size": 16, "n_hashes": 2}, max_len=128)
