"""One Particle Transformer skeleton with a pluggable particle-block token mixer.

The model is weaver-core's ParT (arXiv:2202.03772, the ``version=1`` paper configuration): particle
embedding -> pairwise embedding U (one (N, N) bias per head) -> ``num_layers`` particle blocks ->
``num_cls_layers`` class-attention blocks -> MLP head. The only thing a variant changes is the token
mixer inside the particle blocks (``partx.nn.mixers``: full attention, Flex, Linformer, Reformer,
Mamba, ...). The embeddings, the class-attention blocks and the block layout are weaver's own classes,
imported, so with the default mixer this model loads a state_dict of
``weaver.nn.model.ParticleTransformer.ParticleTransformer`` and gives the same outputs.

Order-sensitive mixers (Mamba) see the particles in an explicit ``ordering`` (pT, eta-phi curve, LSH),
applied once before the particle blocks; the class-attention pooling is permutation invariant, so
jet-level outputs need no un-permuting.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from weaver.nn.model.ParticleTransformer import (
    Block,
    Embed,
    PairEmbed,
    SequenceTrimmer,
    build_sparse_tensor,
    init_weights_vit_moco,
    named_apply,
)

from partx.nn.mixers import build_mixer, mixer_class


@dataclass
class ParTConfig:
    """Hyper-parameters; the defaults are the ParT paper's (2.14M parameters with 17 inputs, 10 classes)."""

    input_dim: int
    num_classes: int | None = None
    pair_input_dim: int = 4
    pair_extra_dim: int = 0
    remove_self_pair: bool = False
    use_pre_activation_pair: bool = True
    embed_dims: tuple[int, ...] = (128, 512, 128)
    pair_embed_dims: tuple[int, ...] | None = (64, 64, 64)  # None: no U ("ParT-plain")
    num_heads: int = 8
    num_layers: int = 8
    num_cls_layers: int = 2
    block_params: dict | None = None
    cls_block_params: dict | None = None
    fc_params: tuple = ()
    activation: str = "gelu"
    trim: bool = True
    for_inference: bool = False
    use_amp: bool = False  # set by weaver's --use-amp; autocast itself is weaver's job
    compile_model: bool = False  # set by weaver's --compile-model
    # partx additions
    mixer: str = "sdpa"
    mixer_options: dict = field(default_factory=dict)
    ordering: str = "none"
    max_len: int = 128


def _block_config(cfg: ParTConfig) -> dict:
    """Per-block settings of weaver's ParT ``version=1`` (its ``default_cfg``)."""
    embed_dim = cfg.embed_dims[-1] if len(cfg.embed_dims) > 0 else cfg.input_dim
    return dict(
        embed_dim=embed_dim, num_heads=cfg.num_heads, ffn_ratio=4, dropout=0.1, attn_dropout=0.1,
        activation_dropout=0.1, activation=cfg.activation, use_rmsnorm=False, use_bias=True, use_qk_norm=False,
        headwise_attn_output_gate=False, elementwise_attn_output_gate=False, layer_scale_init_values=None,
        drop_path_rate=0.0, scale_attn_mask=False, scale_fc=True, scale_attn=True, scale_heads=True,
        scale_resids=True, for_inference=cfg.for_inference,
    )


class ParticleBlock(Block):
    """weaver's ParT block with its attention replaced by any batch-first mixer.

    Parameter names are weaver's (``attn`` is the mixer), so the default mixer's state_dict is
    interchangeable with weaver's block.
    """

    def __init__(self, mixer: nn.Module, **block_cfg):
        super().__init__(**block_cfg)
        self.attn = mixer

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, C), mask (B, N) True for real particles, bias (B, H, N, N) or None -> (B, N, C)."""
        residual = x
        x = self.attn(self.pre_attn_norm(x), mask, bias)
        if self.c_attn is not None:
            B, N, _ = x.shape
            x = (x.view(B, N, self.num_heads, self.head_dim) * self.c_attn.view(1, 1, -1, 1)).reshape(B, N, -1)
        x = self.drop_path1(self.ls1(self.dropout(self.post_attn_norm(x)))) + residual

        residual = x
        x = self.act_dropout(self.act(self.fc1(self.pre_fc_norm(x))))
        x = self.drop_path2(self.ls2(self.dropout(self.fc2(self.post_fc_norm(x)))))
        if self.w_resid is not None:
            residual = self.w_resid * residual
        return x + residual


def _gather_particles(t: torch.Tensor, perm: torch.Tensor, dim: int) -> torch.Tensor:
    """Re-order ``t`` along particle axis ``dim`` with perm (B, N)."""
    shape = [1] * t.dim()
    shape[0], shape[dim] = perm.size(0), perm.size(1)
    index = perm.view(shape).expand(*[t.size(i) if i != dim else perm.size(1) for i in range(t.dim())])
    return t.gather(dim, index)


class ParticleTransformer(nn.Module):
    """ParT with a pluggable mixer; ``forward`` takes weaver's inputs.

    forward(x (B, F, N) features, v (B, 4, N) px,py,pz,E or None, mask (B, 1, N) real=1,
            uu (B, F', N, N) extra pair features or None) -> logits (B, num_classes)
            (softmax when ``for_inference``).
    """

    def __init__(self, **kwargs):
        super().__init__()
        cfg = ParTConfig(**kwargs)
        self.config = cfg
        mixer_uses_bias = getattr(mixer_class(cfg.mixer), "uses_bias", True)
        if cfg.ordering != "none":
            from partx.nn.ordering import particle_order  # noqa: F401  (fail early on a bad install)

        block_cfg = _block_config(cfg)
        cls_cfg = dict(block_cfg, dropout=0, attn_dropout=0, activation_dropout=0)
        block_cfg.update(cfg.block_params or {})
        cls_cfg.update(cfg.cls_block_params or {})
        embed_dim = block_cfg["embed_dim"]

        self.trimmer = SequenceTrimmer(enabled=cfg.trim and not cfg.for_inference)
        self.embed = Embed(cfg.input_dim, cfg.embed_dims, activation=cfg.activation) if cfg.embed_dims else nn.Identity()
        use_pairs = cfg.pair_embed_dims is not None and cfg.pair_input_dim + cfg.pair_extra_dim > 0 and mixer_uses_bias
        self.pair_embed = (
            PairEmbed(
                cfg.pair_input_dim, cfg.pair_extra_dim, (*cfg.pair_embed_dims, cfg.num_heads),
                remove_self_pair=cfg.remove_self_pair, use_pre_activation_pair=cfg.use_pre_activation_pair,
                for_onnx=cfg.for_inference,
            )
            if use_pairs
            else None
        )

        def make_mixer() -> nn.Module:
            return build_mixer(
                cfg.mixer, embed_dim=embed_dim, num_heads=cfg.num_heads, dropout=block_cfg["attn_dropout"],
                max_len=cfg.max_len, **cfg.mixer_options,
            )

        self.blocks = nn.ModuleList([ParticleBlock(make_mixer(), **block_cfg) for _ in range(cfg.num_layers)])
        self.cls_blocks = nn.ModuleList([Block(**cls_cfg) for _ in range(cfg.num_cls_layers)])
        self.norm = nn.LayerNorm(embed_dim)
        self.fc = self._make_head(embed_dim, cfg) if cfg.num_classes is not None else None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if cfg.num_cls_layers > 0 else None
        self._init_weights()

    @staticmethod
    def _make_head(in_dim: int, cfg: ParTConfig) -> nn.Sequential:
        layers = []
        for param in cfg.fc_params:
            out_dim, drop_rate, *act = param if len(param) == 3 else (*param, "relu")
            layers.append(nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU() if act[0] == "gelu" else nn.ReLU(), nn.Dropout(drop_rate)))
            in_dim = out_dim
        layers.append(nn.Linear(in_dim, cfg.num_classes))
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # weaver's "moco" init followed by its depth-dependent rescaling of the residual projections
        named_apply(init_weights_vit_moco, self)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for layer_id, block in enumerate(self.blocks, start=1):
            for proj in (getattr(block.attn, "out_proj", None), block.fc2):
                if isinstance(proj, nn.Linear):
                    proj.weight.data.div_((2.0 * layer_id) ** 0.5)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"cls_token"}

    def encode(self, x, v=None, mask=None, uu=None, uu_idx=None):
        """Particle blocks only. Returns (tokens (B, N', C), real-particle mask (B, N'), perm (B, N') or None)."""
        with torch.no_grad():
            if uu_idx is not None and not self.config.for_inference:
                uu = build_sparse_tensor(uu, uu_idx, x.size(-1))
            x, v, mask, uu = self.trimmer(x, v, mask, uu)
            perm = None
            if self.config.ordering != "none":
                if v is None:
                    raise ValueError(f"ordering {self.config.ordering!r} needs the particle 4-vectors input (v)")
                from partx.nn.ordering import particle_order

                perm = particle_order(self.config.ordering, v, mask[:, 0].bool())
                x, v, mask = (_gather_particles(t, perm, 2) for t in (x, v, mask))
                if uu is not None:
                    uu = _gather_particles(_gather_particles(uu, perm, 2), perm, 3)
        real = mask[:, 0].bool()  # (B, N)

        tokens = self.embed(x).masked_fill(~real[..., None], 0)  # (B, N, C)
        bias = None
        if self.pair_embed is not None and (v is not None or uu is not None):
            bias = self.pair_embed(v, uu=uu, mask=mask)  # (B, H, N, N)
            # U of pairs with a padded particle is never used, but is NaN in exported ONNX graphs when
            # padding is zeros (the ONNX form of atan2(0, 0)), and NaN + mask poisons the whole row.
            pair_real = real[:, None, :, None] & real[:, None, None, :]
            bias = bias.masked_fill(~pair_real, 0.0)
        for block in self.blocks:
            tokens = block(tokens, real, bias)
        return tokens, real, perm

    def pool(self, tokens: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Class-attention pooling (CaiT-style) or masked mean if no class blocks: (B, N, C) -> (B, C)."""
        if self.cls_token is None:
            counts = real.sum(1, keepdim=True).clamp(min=1)
            return self.norm((tokens * real[..., None]).sum(1) / counts)
        cls = self.cls_token.expand(tokens.size(0), -1, -1)
        for block in self.cls_blocks:
            cls = block(tokens, x_cls=cls, padding_mask=~real)
        return self.norm(cls.squeeze(1))

    def forward(self, x, v=None, mask=None, uu=None, uu_idx=None):
        if mask is None:
            mask = torch.ones_like(x[:, :1])
        tokens, real, _ = self.encode(x, v, mask, uu, uu_idx)
        out = self.pool(tokens, real)
        if self.fc is None:
            return out
        out = self.fc(out)
        return torch.softmax(out, dim=1) if self.config.for_inference else out

    def config_dict(self) -> dict:
        return copy.deepcopy(asdict(self.config))
