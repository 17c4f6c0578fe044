"""One Particle Transformer skeleton with a pluggable particle-block token mixer.

The model is weaver-core 0.5.3's ParT (arXiv:2202.03772): particle embedding -> pairwise embedding U (one
(N, N) bias per head) -> ``num_layers`` particle blocks -> ``num_cls_layers`` class-attention blocks (or a
global token, or a masked mean) -> MLP head. ``version`` 1 is the paper; 2, 3 (and weaver's experimental
3.5, 3.6) change the block defaults exactly as weaver does (``version_block_defaults``), and every
constructor option of weaver's ParT is a ``ParTConfig`` field. The only thing a variant changes is the
token mixer inside the particle blocks (``partx.nn.mixers``: full attention, Flex, Linformer, Reformer,
Mamba, ...): one ``mixer`` for all blocks, or one per block (``block_mixers``, e.g. Mamba blocks with one
attention-with-U block: HybridParT, docs/hybrid.md). U is computed once, and only when some block's mixer
takes it (``uses_bias``) and weaver's ``block_ids_with_attn_mask`` gives it to that block. The embeddings, the class-attention blocks and the block layout are weaver's own classes,
imported, so with the default mixer this model loads a state_dict of
``weaver.nn.model.ParticleTransformer.ParticleTransformer`` of the same version and options and gives the
same outputs. An option a mixer cannot honour (qk-norm or output gates in a Mamba scan, ``scale_attn_mask``
in a mixer without U) raises ``ValueError`` naming the option and the mixer.

Initialisation: weaver's (``weight_init`` "moco", ``fix_init`` depth rescaling) for everything except the
mixers that declare their own (``weaver_init = False``: Mamba's dt bias, A and projections stay as
mamba-ssm initialises them); the attention mixers initialise themselves with weaver's scheme, so with the
default mixer the initial distributions are weaver's.

Order-sensitive mixers (Mamba) see the particles in an explicit ``ordering`` (pT, eta-phi curve, LSH),
applied once before the particle blocks; the class-attention pooling is permutation invariant, so
jet-level outputs need no un-permuting (per-particle outputs, ``for_segmentation``, are un-permuted).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn
from weaver.nn.model.ParticleTransformer import (
    Block,
    Embed,
    PairEmbed,
    RMSNorm,
    SequenceTrimmer,
    SwiGLUFFN,
    build_sparse_tensor,
    init_weights_vit_moco,
    init_weights_vit_timm,
)

from partx.nn.local_attention import LocalPairs, pair_embed_at
from partx.nn.mixers import build_mixer, mixer_class
from partx.nn.options import check_options


@dataclass
class ParTConfig:
    """Hyper-parameters; the defaults are the ParT paper's (2.14M parameters with 17 inputs, 10 classes).

    Every field up to ``compile_model`` is a keyword of weaver-core 0.5.3's ``ParticleTransformer`` with
    the same meaning and default (``pair_input_dim=None``: 4 / 6 / 7 for ``pair_input_type`` "pp" / "ee" /
    "xyzt"); ``version`` selects weaver's block defaults (``version_block_defaults``).
    """

    input_dim: int
    num_classes: int | None = None
    pair_input_type: str = "pp"
    pair_input_dim: int | None = None
    pair_extra_dim: int = 0
    remove_self_pair: bool = False
    use_pre_activation_pair: bool = True
    use_conv_embed: bool = False
    embed_dims: tuple[int, ...] = (128, 512, 128)
    pair_embed_dims: tuple[int, ...] | None = (64, 64, 64)  # None: no U ("ParT-plain")
    pair_embed_sparse_eval: tuple[bool, bool] | None = None
    num_heads: int = 8
    num_layers: int = 8
    block_params: dict | None = None
    block_ids_with_attn_mask: tuple[int, ...] | None = None  # None: U in every particle block
    include_global_token: bool = False
    num_cls_layers: int = 2
    cls_block_params: dict | None = None
    fc_params: tuple = ()
    activation: str = "gelu"
    version: float = 1
    weight_init: str | None = "moco"
    fix_init: bool = True
    trim: bool = True
    for_inference: bool = False
    for_segmentation: bool = False
    use_amp: bool = False  # set by weaver's --use-amp; autocast itself is weaver's job
    compile_model: bool = False  # set by weaver's --compile-model
    # partx additions
    mixer: str = "sdpa"
    mixer_options: dict = field(default_factory=dict)  # for the blocks that use ``mixer``
    block_mixers: tuple[str, ...] | None = None  # one mixer name per particle block; None: ``mixer`` in all
    ordering: str = "none"
    max_len: int = 128


#: weaver's ParT versions (``version=``); 3.5 and 3.6 are marked experimental there.
VERSIONS = (1, 2, 3, 3.5, 3.6)


def version_block_defaults(version: float, embed_dim: int, num_heads: int, activation: str, for_inference: bool) -> dict:
    """weaver ParT's per-block ``default_cfg`` for ``version`` (keywords of weaver's ``Block``).

    1: the paper (LayerNorm, GELU, dropout 0.1, NormFormer-style extra norms and head / residual scaling);
    2: SwiGLU feed-forward (``fc1_g``), no extra norms or scalings; 3: also RMSNorm, no biases, no dropout,
    drop-path 0.1; 3.5 / 3.6: also qk-norm and an elementwise attention output gate.
    """
    if version not in VERSIONS:
        raise ValueError(f"ParT version {version!r} is not one of weaver's: {', '.join(map(str, VERSIONS))}")
    cfg = dict(
        embed_dim=embed_dim, num_heads=num_heads, ffn_ratio=4, dropout=0.1, attn_dropout=0.1,
        activation_dropout=0.1, activation=activation, use_rmsnorm=False, use_bias=True, use_qk_norm=False,
        headwise_attn_output_gate=False, elementwise_attn_output_gate=False, layer_scale_init_values=None,
        drop_path_rate=0.0, scale_attn_mask=False, scale_fc=True, scale_attn=True, scale_heads=True,
        scale_resids=True, for_inference=for_inference,
    )
    if version >= 2:
        cfg.update(activation="swiglu", scale_fc=False, scale_attn=False, scale_heads=False, scale_resids=False)
    if version >= 3:
        cfg.update(use_rmsnorm=True, use_bias=False, dropout=0, attn_dropout=0, activation_dropout=0, drop_path_rate=0.1)
    if version >= 3.5:
        cfg.update(use_qk_norm=True, elementwise_attn_output_gate=True)
    return cfg


def norm_class(use_rmsnorm: bool, for_inference: bool) -> type[nn.Module]:
    """weaver's choice: LayerNorm, or RMSNorm (its ONNX-exportable one for inference, torch's for training)."""
    if not use_rmsnorm:
        return nn.LayerNorm
    return RMSNorm if for_inference else nn.RMSNorm


def attention_options(block_cfg: dict) -> dict:
    """weaver ``Block`` settings -> the keywords its ``Attention`` receives, as weaver's Block maps them."""
    return dict(
        bias=block_cfg["use_bias"], use_qk_norm=block_cfg["use_qk_norm"],
        norm_layer=norm_class(block_cfg["use_rmsnorm"], block_cfg["for_inference"]),
        headwise_attn_output_gate=block_cfg["headwise_attn_output_gate"],
        elementwise_attn_output_gate=block_cfg["elementwise_attn_output_gate"],
    )


#: attention options whose value changes the function; a mixer that does not implement one must see it off.
#: (``bias`` and ``norm_layer`` are not listed: a mixer without them keeps its own convention, e.g. Mamba's
#: bias-free projections, and ``norm_layer`` only matters with ``use_qk_norm``.)
_FUNCTIONAL_ATTENTION_OPTIONS = ("use_qk_norm", "headwise_attn_output_gate", "elementwise_attn_output_gate")


def mixer_attention_options(mixer: str, mixer_cls: type[nn.Module], block_cfg: dict) -> dict:
    """The attention options ``mixer`` implements, with the block's values; raises for the others if set."""
    supported = getattr(mixer_cls, "attention_options", ())
    options = attention_options(block_cfg)
    for name in _FUNCTIONAL_ATTENTION_OPTIONS:
        if options[name] and name not in supported:
            raise ValueError(f"ParT option {name}=True cannot be honoured by mixer {mixer!r} (it implements: "
                             f"{', '.join(supported) or 'none'})")
    return {k: v for k, v in options.items() if k in supported}


def block_mixer_names(cfg: ParTConfig) -> list[str]:
    """The mixer of each particle block: ``block_mixers`` (one name per block, checked) or ``mixer`` everywhere.

    A per-block list rather than a list of attention block ids: one statement covers every combination
    (Mamba + attention-with-U, Mamba + Linformer, ...), each block's entry sits at its index like weaver's
    block layout, and it survives a JSON round trip of the config. ``mixer_options`` go to the blocks whose
    mixer is ``mixer``; the others get their mixer's defaults. Raises ``ValueError`` naming the problem
    (wrong length, unknown mixer).
    """
    if cfg.block_mixers is None:
        return [cfg.mixer] * cfg.num_layers
    if isinstance(cfg.block_mixers, str) or len(cfg.block_mixers) != cfg.num_layers:
        raise ValueError(f"block_mixers must name one mixer per particle block (num_layers={cfg.num_layers}), "
                         f"got {cfg.block_mixers!r}")
    names = list(cfg.block_mixers)
    for i, name in enumerate(names):
        try:
            mixer_class(name)
        except ValueError as err:
            raise ValueError(f"block_mixers[{i}]: {err}") from None
    return names


class ParticleBlock(Block):
    """weaver's ParT block with its attention replaced by any batch-first mixer.

    Parameter names are weaver's (``attn`` is the mixer), so the default mixer's state_dict is
    interchangeable with weaver's block. ``forward`` is weaver's ``Block.forward`` self-attention branch
    (``x_cls=None``) with the mixer's call convention.
    """

    def __init__(self, mixer: nn.Module, **block_cfg):
        super().__init__(**block_cfg)
        self.attn = mixer

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, C), mask (B, N) True for real particles, bias (B, H, N, N) or None -> (B, N, C)."""
        if self.c_mask is not None and bias is not None:  # scale_attn_mask: one learned factor on U
            bias = self.c_mask * bias
        residual = x
        x = self.attn(self.pre_attn_norm(x), mask, bias)
        if self.c_attn is not None:
            B, N, _ = x.shape
            x = (x.view(B, N, self.num_heads, self.head_dim) * self.c_attn.view(1, 1, -1, 1)).reshape(B, N, -1)
        x = self.drop_path1(self.ls1(self.dropout(self.post_attn_norm(x)))) + residual

        residual = x
        x = self.pre_fc_norm(x)
        x = self.act(self.fc1(x)) if self.fc1_g is None else self.act(self.fc1_g(x)) * self.fc1(x)  # GELU / SwiGLU
        x = self.drop_path2(self.ls2(self.dropout(self.fc2(self.post_fc_norm(self.act_dropout(x))))))
        if self.w_resid is not None:
            residual = self.w_resid * residual
        return x + residual


def _block_configs(cfg: ParTConfig, embed_dim: int) -> tuple[dict, dict, dict]:
    """(version defaults, particle-block settings, class-block settings), as weaver's ParT derives them."""
    if cfg.weight_init not in ("moco", "timm", None):
        raise ValueError(f"weight_init must be 'moco', 'timm' or None, not {cfg.weight_init!r}")
    default_cfg = version_block_defaults(cfg.version, embed_dim, cfg.num_heads, cfg.activation, cfg.for_inference)
    block_cfg = dict(default_cfg, **(cfg.block_params or {}))
    cls_cfg = dict(default_cfg, dropout=0, attn_dropout=0, activation_dropout=0)
    cls_cfg.update(cfg.cls_block_params or {})
    check_options("block_params", block_cfg, default_cfg)
    check_options("cls_block_params", cls_cfg, default_cfg)
    return default_cfg, block_cfg, cls_cfg


def _pair_embed(cfg: ParTConfig, num_heads: int, use_bias: bool) -> PairEmbed | None:
    """weaver's pairwise embedding U (None without ``pair_embed_dims`` or pair inputs: "ParT-plain")."""
    pair_input_dim = cfg.pair_input_dim
    if pair_input_dim is None:
        pair_input_dim = {"pp": 4, "ee": 6}.get(cfg.pair_input_type, 7)  # weaver: "xyzt[:coords]" -> 7
    if cfg.pair_embed_dims is None or pair_input_dim + cfg.pair_extra_dim == 0:
        return None
    sparse_eval = cfg.pair_embed_sparse_eval
    if sparse_eval is None:
        sparse_eval = (False, True) if cfg.compile_model else (True, True)
    return PairEmbed(
        pair_input_dim, cfg.pair_extra_dim, (*cfg.pair_embed_dims, num_heads), pairwise_lv_type=cfg.pair_input_type,
        remove_self_pair=cfg.remove_self_pair, use_pre_activation_pair=cfg.use_pre_activation_pair, use_bias=use_bias,
        for_onnx=cfg.for_inference, sparse_eval=tuple(sparse_eval),
    )


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
            (softmax when ``for_inference``; (B, num_classes, N) per particle when ``for_segmentation``).
    """

    def __init__(self, **kwargs):
        super().__init__()
        check_options(type(self).__name__, kwargs, [f.name for f in fields(ParTConfig)])
        cfg = ParTConfig(**kwargs)
        self.config = cfg
        mixer_class(cfg.mixer)  # an unknown ``mixer`` fails here even when block_mixers replaces it everywhere
        mixers = block_mixer_names(cfg)
        mixer_classes = {name: mixer_class(name) for name in dict.fromkeys(mixers)}
        takes_u = {name: getattr(cls, "uses_bias", True) for name, cls in mixer_classes.items()}
        if cfg.ordering != "none":
            from partx.nn.ordering import particle_order  # noqa: F401  (fail early on a bad install)
        # weaver's experimental 3.6 forces a global token instead of class-attention blocks
        self.include_global_token = cfg.include_global_token or cfg.version == 3.6
        num_cls_layers = 0 if cfg.version == 3.6 else cfg.num_cls_layers
        if self.include_global_token and num_cls_layers > 0:
            raise ValueError("include_global_token needs num_cls_layers=0 (the token replaces class attention)")

        embed_dim = cfg.embed_dims[-1] if len(cfg.embed_dims) > 0 else cfg.input_dim
        default_cfg, block_cfg, cls_cfg = _block_configs(cfg, embed_dim)
        for name in mixer_classes:
            if block_cfg["scale_attn_mask"] and not takes_u[name]:
                raise ValueError(f"ParT option scale_attn_mask=True cannot be honoured by mixer {name!r} (it does not use U)")
        mixer_attn_options = {name: mixer_attention_options(name, cls, block_cfg) for name, cls in mixer_classes.items()}
        given_twice = sorted(set(cfg.mixer_options) & set(attention_options(block_cfg)))
        if given_twice:
            raise ValueError(f"mixer_options {', '.join(given_twice)}: set these through block_params")
        norm_layer = norm_class(default_cfg["use_rmsnorm"], cfg.for_inference)
        # which blocks get U: weaver's block_ids_with_attn_mask (None: all) among the blocks whose mixer takes U
        wants_u = [cfg.block_ids_with_attn_mask is None] * cfg.num_layers
        for i in cfg.block_ids_with_attn_mask or ():  # weaver's list indexing (negative ids count from the end)
            wants_u[i] = True
            if not takes_u[mixers[i]]:
                raise ValueError(f"block_ids_with_attn_mask names block {i}, whose mixer {mixers[i]!r} does not use U")
        self.block_uses_bias = [w and takes_u[name] for w, name in zip(wants_u, mixers)]
        n_extra = 1 if self.include_global_token else 0

        self.trimmer = SequenceTrimmer(enabled=cfg.trim and not cfg.for_inference, round_to_32=cfg.compile_model,
                                       num_extra_tokens=n_extra)
        self.embed = (Embed(cfg.input_dim, cfg.embed_dims, activation=cfg.activation, use_conv_embed=cfg.use_conv_embed)
                      if cfg.embed_dims else nn.Identity())
        # built when a block's mixer takes U (weaver builds it even if block_ids_with_attn_mask is empty: same
        # state_dict), computed in ``encode`` only when some block receives it
        self.pair_embed = (_pair_embed(cfg, block_cfg["num_heads"], default_cfg["use_bias"])
                           if any(takes_u[name] for name in mixers) else None)

        def make_mixer(name: str) -> nn.Module:
            return build_mixer(
                name, embed_dim=block_cfg["embed_dim"], num_heads=block_cfg["num_heads"],
                dropout=block_cfg["attn_dropout"], max_len=cfg.max_len + n_extra, **mixer_attn_options[name],
                **(cfg.mixer_options if name == cfg.mixer else {}),
            )

        self.blocks = nn.ModuleList([ParticleBlock(make_mixer(name), **block_cfg) for name in mixers])
        if self.include_global_token and "local" in self._pair_modes():
            raise ValueError("a local-attention mixer attends over nearest neighbours: it cannot take a global token")
        self.cls_blocks = nn.ModuleList([Block(**cls_cfg) for _ in range(num_cls_layers)])
        self.norm = norm_layer(embed_dim)
        self.fc = self._make_head(embed_dim, cfg, default_cfg["use_bias"], norm_layer) if cfg.num_classes is not None else None
        use_token = self.include_global_token or (not cfg.for_segmentation and num_cls_layers > 0)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if use_token else None
        self._init_weights()

    @staticmethod
    def _make_head(in_dim: int, cfg: ParTConfig, use_bias: bool, norm_layer: type[nn.Module]) -> nn.Sequential:
        """weaver's head: per ``fc_params`` entry (width, dropout[, "relu" | "gelu" | "swiglu"]), then the logits."""
        layers = []
        for param in cfg.fc_params:
            out_dim, drop_rate, act = param if len(param) == 3 else (*param, "relu")
            if act == "swiglu":
                layers.append(nn.Sequential(SwiGLUFFN(in_dim, out_dim * 4, out_dim, drop=drop_rate, bias=use_bias),
                                            norm_layer(out_dim)))
            else:
                layers.append(nn.Sequential(nn.Linear(in_dim, out_dim, bias=use_bias),
                                            nn.GELU() if act == "gelu" else nn.ReLU(), nn.Dropout(drop_rate)))
            in_dim = out_dim
        layers.append(nn.Linear(in_dim, cfg.num_classes))
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        """weaver's ParT initialisation (``weight_init``, then ``fix_init``) of everything but the mixers that
        keep their own (``weaver_init = False``, e.g. Mamba's dt bias and S4D A): those are left untouched."""
        cfg = self.config
        own_init = {id(m) for b in self.blocks if not getattr(b.attn, "weaver_init", False) for m in b.attn.modules()}
        init_fn = {"moco": init_weights_vit_moco, "timm": init_weights_vit_timm, None: None}[cfg.weight_init]
        if init_fn is not None:
            for name, module in self.named_modules():
                if name and id(module) not in own_init:  # weaver's named_apply visits children, not the root
                    init_fn(module, name)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if cfg.fix_init:  # depth rescaling of the residual projections, as weaver's fix_init_weight
            for layer_id, block in enumerate(self.blocks, start=1):
                projs = [block.fc2] + ([block.attn.out_proj] if getattr(block.attn, "weaver_init", False) else [])
                for proj in projs:
                    proj.weight.data.div_((2.0 * layer_id) ** 0.5)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"cls_token"}

    def encode(self, x, v=None, mask=None, uu=None, uu_idx=None):
        """Particle blocks only. Returns (tokens (B, T + N', C), real mask (B, T + N'), perm (B, N') or None);
        T = 1 with ``include_global_token`` (the token first), else 0."""
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
        modes = self._pair_modes()
        bias = None
        dense_u = any(u and m == "dense" for u, m in zip(self.block_uses_bias, modes))
        if self.pair_embed is not None and dense_u and (v is not None or uu is not None):
            bias = self.pair_embed(v, uu=uu, mask=mask)  # (B, H, N, N)
            # U of pairs with a padded particle is never used, but is NaN in exported ONNX graphs when
            # padding is zeros (the ONNX form of atan2(0, 0)), and NaN + mask poisons the whole row.
            pair_real = real[:, None, :, None] & real[:, None, None, :]
            bias = bias.masked_fill(~pair_real, 0.0)
        if self.include_global_token:  # weaver: the token first, a real key, with U = 0 to and from it
            tokens = torch.cat((self.cls_token.expand(tokens.size(0), -1, -1), tokens), dim=1)
            real = F.pad(real, (1, 0), value=True)
            bias = F.pad(bias, (1, 0, 1, 0), value=0.0) if bias is not None else None
        pairs = self.local_pairs(v, uu, real) if "local" in modes else None
        for block, uses_bias, mode in zip(self.blocks, self.block_uses_bias, modes):
            if mode == "local":
                tokens = block(tokens, real, pairs if uses_bias else LocalPairs(pairs.index, None))
            else:
                tokens = block(tokens, real, bias if uses_bias else None)
        return tokens, real, perm

    def _pair_modes(self) -> list[str]:
        """Per particle block: "dense" (U as (B, H, N, N)) or "local" (``LocalPairs``), as its mixer declares."""
        return [getattr(block.attn, "pair_mode", "dense") for block in self.blocks]

    def local_pairs(self, v: torch.Tensor | None, uu: torch.Tensor | None, real: torch.Tensor) -> LocalPairs:
        """Neighbour index of the (first) local mixer and U evaluated only on those pairs (no dense U).

        Args: v (B, 4, N) 4-vectors, uu (B, F', N, N) or None, real (B, N) bool. Returns ``LocalPairs``.
        """
        if v is None:
            raise ValueError("a local-attention mixer needs the particle 4-vectors input (v) to find neighbours")
        mixer = next(block.attn for block in self.blocks if getattr(block.attn, "pair_mode", "dense") == "local")
        index = mixer.neighbours(v, real)  # (B, N, k)
        bias = pair_embed_at(self.pair_embed, v, uu, index, real) if self.pair_embed is not None else None
        return LocalPairs(index, bias)

    def pool(self, tokens: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Global token, class-attention pooling (CaiT-style) or masked mean: (B, N, C) -> (B, C)."""
        if self.include_global_token:
            return self.norm(tokens[:, 0])
        if self.cls_token is None:
            counts = real.sum(1, keepdim=True).clamp(min=1)
            return self.norm((tokens * real[..., None]).sum(1) / counts)
        cls = self.cls_token.expand(tokens.size(0), -1, -1)
        for block in self.cls_blocks:
            cls = block(tokens, x_cls=cls, padding_mask=~real)
        return self.norm(cls.squeeze(1))

    def per_particle(self, tokens: torch.Tensor, perm: torch.Tensor | None) -> torch.Tensor:
        """Segmentation output: tokens (B, T + N', C) -> (B, num_classes or C, N') in the input particle order."""
        if self.include_global_token:
            tokens = tokens[:, 1:]
        if perm is not None:
            from partx.nn.ordering import inverse_permutation

            tokens = _gather_particles(tokens, inverse_permutation(perm), 1)
        out = self.norm(tokens)
        if self.fc is not None:
            out = self.fc(out)
        return out.transpose(1, 2).contiguous()

    def forward(self, x, v=None, mask=None, uu=None, uu_idx=None):
        if mask is None:
            mask = torch.ones_like(x[:, :1])
        tokens, real, perm = self.encode(x, v, mask, uu, uu_idx)
        if self.config.for_segmentation:
            out = self.per_particle(tokens, perm)
        else:
            out = self.pool(tokens, real)
            if self.fc is None:
                return out
            out = self.fc(out)
        return torch.softmax(out, dim=1) if self.config.for_inference else out

    def config_dict(self) -> dict:
        return copy.deepcopy(asdict(self.config))
