"""weaver network file: LocalParT, attention over each particle's k = 16 nearest neighbours in Delta R.

U is evaluated only for those (particle, neighbour) pairs, in training and inference, by ParT's own pair
embedding (partx/nn/local_attention.py; docs/local_attention.md). ``-o mixer_options "{'k': 32}"`` changes k.
"""

from partx.models.weaver_net import part_network

get_model, get_loss = part_network(mixer="local", mixer_options={"k": 16})
