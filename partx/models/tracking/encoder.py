"""Point-cloud tracking encoders: HEPT, Mamba, Mamba-a, Mamba-b — one skeleton, different mixers.

``TrackingEncoder(cfg)(x (B, N, C_in), coords (B, N, D), mask (B, N) bool) -> (B, N, E)`` per-hit embeddings
(E = h_dim // 2, zero on padding). Layout, following Graph-COM/HEPT ``example/transformer.py``
(``Transformer``) and Lampa (chengjiang123/Lampa ``models/baselines/hmamba.py`` ``HMamba_v1``,
``models/baselines/full_mamba2.py`` ``FullHybridMamba2``):

    encoder   Linear(C_in, h) - ReLU - Linear(h, h)                         (all models)
    blocks    n_layers x ResidualBlock(mixer)                               (see below)
    head      HEPT:  W(concat[encoder out, every block out]) (no bias) -> h/2
              Mamba: final norm -> W0 (no bias) -> h/2 -> LayerNorm          (Lampa; the paper's Sec. 4)
              then out = y + dropout(MLP(y)), MLP = 5-layer PyG-style MLP, hidden 256

Mixers per model (``cfg.model``):
  * ``hept``:    ``HEPTAttention`` + FF in every block (LayerNorm).
  * ``mamba``:   bidirectional ``OrderedMamba`` (Mamba-1) on the stored hit order, no FF.
  * ``mamba_a``: Mamba blocks (Mamba-2, RMSNorm, stored order) with one *shared* HEPT attention block
                 (attention + FF, its own residual) after the middle Mamba layer(s) (``attn_layers="middle"``:
                 Lampa's ``hybrid_idxs``, layer n/2 or layers n/2 - 1 and n/2) or after every one
                 (``"all"``: the paper's Fig. 2 text); no MoE.
  * ``mamba_b``: Mamba-1 blocks on LSH orders: ``ordering="or_and"`` (partx; T tables, layer l scans table
                 l mod T) or ``"lampa"`` (Lampa's single-projection order, once for all layers).
Padding: every mixer masks it (LSH keys +inf / Mamba real-first orders), and the output is zeroed there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from partx.models.tracking.blocks import MLP, OrderedMamba, ResidualBlock, make_norm
from partx.models.tracking.hept_attention import HEPTAttention
from partx.models.tracking.ordering import LSHOrdering, lampa_order, stored_order
from partx.nn.lsh import e2lsh_params, hept_region_counts, region_codes

MODELS = ("hept", "mamba", "mamba_a", "mamba_b")


@dataclass
class TrackingConfig:
    """Hyper-parameters of a tracking encoder (defaults: HEPT-S = HEPT's tracking-60k config)."""

    model: str = "hept"
    in_dim: int = 15  # HEPT's tracking x: 14 features + layer / 10
    coords_dim: int = 6  # HEPT's coords: (eta, phi) + (r, phi, z, eta_rz)
    h_dim: int = 24
    n_layers: int = 4
    dropout: float = 0.1
    # HEPT attention (HEPT's src/configs/tracking/tracking_trans_hept.yaml)
    num_heads: int = 8
    block_size: int = 100
    n_hashes: int = 3
    num_regions: float = 150.0
    num_w_per_dist: int = 10
    lsh_seed: int | None = 0  # projections / region counts; None = global RNG (HEPT's behaviour)
    # Mamba
    mamba_block: str = "mamba1"
    mamba_heads: int = 4  # Mamba-2 SSD heads
    d_state: int = 16
    expand: int = 2
    bidirectional: bool = True
    attn_layers: str = "middle"  # mamba_a: "middle" | "all"
    ordering: str = "or_and"  # mamba_b: "or_and" | "lampa"
    n_tables: int = 3
    n_and: int = 2
    bucket_width: float = 0.5
    # blocks / head
    norm: str = "layer"
    head_hidden: int = 256
    head_layers: int = 5
    head_act: str = "tanh"

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown tracking model {self.model!r}; choose one of: {', '.join(MODELS)}")

    @property
    def embed_dim(self) -> int:
        return self.h_dim // 2


class TrackingEncoder(nn.Module):
    """Per-hit embedding network (see module doc). Build with a ``TrackingConfig``."""

    def __init__(self, cfg: TrackingConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.h_dim
        self.encoder = nn.Sequential(nn.Linear(cfg.in_dim, h), nn.ReLU(), nn.Linear(h, h))
        seed = lambda i: None if cfg.lsh_seed is None else cfg.lsh_seed + i  # noqa: E731
        attn = lambda i: HEPTAttention(  # noqa: E731
            h, cfg.num_heads, cfg.coords_dim, cfg.n_hashes, cfg.block_size, cfg.num_w_per_dist, seed=seed(i)
        )
        mamba = lambda i: OrderedMamba(  # noqa: E731
            h, table=i, block=cfg.mamba_block, num_heads=cfg.mamba_heads, d_state=cfg.d_state, expand=cfg.expand,
            bidirectional=cfg.bidirectional,
        )
        if cfg.model == "hept":
            blocks = [ResidualBlock(h, attn(i), ff=True, norm=cfg.norm, dropout=cfg.dropout) for i in range(cfg.n_layers)]
        else:
            blocks = [ResidualBlock(h, mamba(i), ff=False, norm=cfg.norm, dropout=0.0) for i in range(cfg.n_layers)]
        self.blocks = nn.ModuleList(blocks)
        self.attn_after: tuple[int, ...] = ()
        if cfg.model == "mamba_a":
            self.attn_block = ResidualBlock(h, attn(0), ff=True, norm="layer", dropout=cfg.dropout)
            n, mid = cfg.n_layers, cfg.n_layers // 2
            if cfg.attn_layers == "all":
                self.attn_after = tuple(range(n))
            elif cfg.attn_layers == "middle":
                self.attn_after = (mid - 1, mid) if n % 2 == 0 and n > 1 else (mid,)
            else:
                raise ValueError(f"attn_layers must be 'middle' or 'all', not {cfg.attn_layers!r}")
        if cfg.model in ("hept", "mamba_a"):
            g = None if cfg.lsh_seed is None else torch.Generator().manual_seed(cfg.lsh_seed + 10_000)
            self.register_buffer("regions", hept_region_counts(cfg.num_regions, cfg.n_hashes, cfg.num_heads, generator=g))
        else:
            self.regions = None
        self.lsh_order = None
        if cfg.model == "mamba_b":
            if cfg.ordering == "or_and":
                self.lsh_order = LSHOrdering(cfg.coords_dim, cfg.n_tables, cfg.n_and, cfg.bucket_width, cfg.num_regions, seed=seed(0) or 0)
            elif cfg.ordering == "lampa":
                a, _ = e2lsh_params(cfg.coords_dim, 3, 1.0, seed=seed(0) or 0, dtype=torch.float32)
                self.register_buffer("lampa_a", a)
            else:
                raise ValueError(f"mamba_b ordering must be 'or_and' or 'lampa', not {cfg.ordering!r}")
        e = cfg.embed_dim
        if cfg.model == "hept":
            self.final_norm = self.head_norm = None
            self.W = nn.Linear(h * (cfg.n_layers + 1), e, bias=False)
        else:
            self.final_norm = make_norm(cfg.norm, h)
            self.W = nn.Linear(h, e, bias=False)
            self.head_norm = nn.LayerNorm(e)
        self.mlp_out = MLP(e, cfg.head_hidden, e, cfg.head_layers, act=cfg.head_act)
        self.dropout = nn.Dropout(cfg.dropout)

    def context(self, coords: torch.Tensor, mask: torch.Tensor) -> dict:
        """Per-forward data shared by all layers: region codes (attention) and hit orders (Mamba)."""
        cfg, ctx = self.cfg, {}
        if self.regions is not None:
            counts = self.regions.permute(1, 0, 2).reshape(2, -1)  # "c a h -> a (c h)"
            codes = region_codes(coords, counts, mask)  # (B, T*H, N)
            ctx["hept_codes"] = codes.view(coords.shape[0], cfg.n_hashes, cfg.num_heads, -1)
        if cfg.model in ("mamba", "mamba_a"):
            ctx["orders"] = [stored_order(mask)]
        elif cfg.model == "mamba_b":
            if self.lsh_order is not None:
                ctx["orders"] = self.lsh_order(coords, mask)
            else:
                ctx["orders"] = [lampa_order(coords, mask, self.lampa_a)]
        return ctx

    def forward(self, x: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, C_in), coords (B, N, D) (columns 0, 1 = eta, phi), mask (B, N) bool -> (B, N, E)."""
        keep = mask[..., None].to(x.dtype)
        x, coords = x * keep, coords * keep  # padding carries nothing (no NaN) into any mixer
        ctx = self.context(coords, mask)
        h = self.encoder(x)
        outs = [h]
        for i, block in enumerate(self.blocks):
            h = block(h, coords, mask, ctx)
            if i in self.attn_after:
                h = self.attn_block(h, coords, mask, ctx)
            outs.append(h)
        if self.final_norm is None:
            y = self.W(torch.cat(outs, dim=-1))
        else:
            y = self.head_norm(self.W(self.final_norm(h)))
        y = y + self.dropout(self.mlp_out(y))
        return y * keep


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (frozen projections and region counts are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
