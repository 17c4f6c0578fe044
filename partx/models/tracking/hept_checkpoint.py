"""Load Graph-COM/HEPT checkpoints (``example/transformer.py`` ``Transformer`` state_dicts, e.g. the public
``example/ckpt/tracking-60k-model.pt``) into partx's ``TrackingEncoder(model="hept")``.

Key map (HEPT -> partx; ``i`` = layer):

    regions                              -> regions                  (T, 2, H) eta/phi region counts (buffer)
    feat_encoder.{0,2}.*                 -> encoder.{0,2}.*
    attns.i.norm1.* / norm2.* / ff.*     -> blocks.i.norm1.* / norm2.* / ff.*
    attns.i.w_q / w_k / w_v .weight      -> blocks.i.mixer.w_q / w_k / w_v .weight
    attns.i.w_rpe.*                      -> blocks.i.mixer.w_rpe.*
    attns.i.attn.out_linear.*            -> blocks.i.mixer.out_proj.*
    attns.i.attn.e2lsh.alpha             -> blocks.i.mixer.alpha    (H, C + D, T) frozen projections (buffer)
    W.weight                             -> W.weight
    mlp_out.lins.j.* / mlp_out.norms.j.* -> mlp_out.lins.j.* / mlp_out.norms.j.*

Everything else in the architecture is read off the tensor shapes (``hept_config_from_state_dict``), except
``block_size``, which HEPT keeps in its YAML config (100 for tracking), and ``num_regions``, which only seeds
the region counts a checkpoint already contains. HEPT's pileup head (``pids_enc``, ``out_proj``) is not mapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from partx.models.tracking.encoder import TrackingConfig, TrackingEncoder

_RULES = [
    (r"^feat_encoder\.", "encoder."),
    (r"^attns\.(\d+)\.attn\.out_linear\.", r"blocks.\1.mixer.out_proj."),
    (r"^attns\.(\d+)\.attn\.e2lsh\.alpha$", r"blocks.\1.mixer.alpha"),
    (r"^attns\.(\d+)\.(w_q|w_k|w_v|w_rpe)\.", r"blocks.\1.mixer.\2."),
    (r"^attns\.(\d+)\.(norm1|norm2|ff)\.", r"blocks.\1.\2."),
    (r"^(regions|W\.weight|mlp_out\.(lins|norms)\.\d+\.(weight|bias))$", r"\1"),
]


def hept_key(key: str) -> str:
    """partx name of a HEPT state_dict key; KeyError if HEPT's tracking model has no such key."""
    for pattern, repl in _RULES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise KeyError(f"no partx counterpart for HEPT key {key!r}")


def hept_config_from_state_dict(sd: Mapping[str, torch.Tensor], block_size: int = 100, **overrides) -> TrackingConfig:
    """``TrackingConfig`` matching a HEPT tracking state_dict (shapes give every size but ``block_size``)."""
    h_dim, in_dim = sd["feat_encoder.0.weight"].shape
    n_layers = len({k.split(".")[1] for k in sd if k.startswith("attns.")})
    heads, hash_dim, n_hashes = sd["attns.0.attn.e2lsh.alpha"].shape
    coords_dim = hash_dim - h_dim
    num_w = sd["attns.0.w_rpe.weight"].shape[1] // (coords_dim - 1)
    head_hidden = sd["mlp_out.lins.0.weight"].shape[0]
    head_layers = len({k.split(".")[2] for k in sd if k.startswith("mlp_out.lins.")})
    kw = dict(
        model="hept", in_dim=in_dim, coords_dim=coords_dim, h_dim=h_dim, n_layers=n_layers, num_heads=heads,
        n_hashes=n_hashes, block_size=block_size, num_w_per_dist=num_w, head_hidden=head_hidden,
        head_layers=head_layers, head_act="tanh",
    )
    kw.update(overrides)
    return TrackingConfig(**kw)


def load_hept_state_dict(model: TrackingEncoder, sd: Mapping[str, torch.Tensor], strict: bool = True):
    """Copy a HEPT tracking state_dict into a partx HEPT encoder through the key map (strict by default)."""
    mapped = {hept_key(k): v for k, v in sd.items()}
    return model.load_state_dict(mapped, strict=strict)


def hept_from_state_dict(sd: Mapping[str, torch.Tensor], block_size: int = 100) -> TrackingEncoder:
    """Build a partx HEPT encoder shaped like ``sd`` and load it."""
    model = TrackingEncoder(hept_config_from_state_dict(sd, block_size=block_size))
    load_hept_state_dict(model, sd)
    return model
