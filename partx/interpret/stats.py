"""Statistics of attention matrices: how "binary" the rows are, and where the attention goes.

Every function takes weights (B, H, Nq, Nk) whose rows are distributions over real keys, with masks
(B, Nq) / (B, Nk) True = real, and works per row (one query particle in one head):

  * ``max_weight``: the largest weight of the row; ``top1_ge_half``: it is >= 0.5 (the particle gives the
    majority of its attention to ONE particle); ``argmax_self``: that particle is itself; ``one_other``: the
    majority goes to one OTHER particle (the "binary" pattern of arXiv:2412.03673);
  * ``entropy`` (nats, over real keys) and ``eff_keys = exp(entropy)`` (1 for a one-hot row, n for a uniform
    row over n keys).

Rows are not independent (the particles of one jet share it), so uncertainties are computed over jets:
each jet contributes the mean of its rows, and ``summary`` gives the mean over jets with its standard error.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

#: particle types of the JetClass flags, in the order ``particle_types`` numbers them
PARTICLE_TYPES = ("ch. hadron", "neu. hadron", "photon", "electron", "muon")
#: the row statistics, in the order ``row_statistics`` returns them
ROW_STATS = ("max_weight", "top1_ge_half", "argmax_self", "one_other", "entropy", "eff_keys")
MAX_WEIGHT_BINS = np.linspace(0.0, 1.0, 21)
DELTA_R_BINS = np.linspace(0.0, 1.0, 21)


def masked_softmax(logits: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """softmax over real keys only: logits (B, H, Nq, Nk), key_mask (B, Nk) -> weights, 0 on padded keys."""
    logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return torch.nan_to_num(logits.softmax(dim=-1), nan=0.0)  # a jet with no real key: a row of zeros


def row_statistics(weights: torch.Tensor, key_mask: torch.Tensor, self_offset: int = 0) -> dict[str, torch.Tensor]:
    """Per-row statistics of weights (B, H, Nq, Nk); each (B, H, Nq).

    Args:
        key_mask: (B, Nk) True = real key.
        self_offset: key index of query i is i + self_offset (0 for particle blocks, and for class blocks
            whose single query, the class token, is key 0).
    """
    w = weights.float() * key_mask[:, None, None, :]
    max_w, arg = w.max(dim=-1)
    ent = -(torch.where(w > 0, w * torch.log(w.clamp_min(1e-30)), torch.zeros_like(w))).sum(-1)
    query_index = torch.arange(w.size(2), device=w.device)[None, None, :] + self_offset
    is_self = arg == query_index
    top1 = max_w >= 0.5
    return dict(max_weight=max_w, top1_ge_half=top1.float(), argmax_self=is_self.float(), one_other=(top1 & ~is_self).float(),
                entropy=ent, eff_keys=ent.exp())


def particle_types(flags: np.ndarray) -> np.ndarray:
    """(N, 5) one-hot JetClass flags (isChargedHadron, isNeutralHadron, isPhoton, isElectron, isMuon) -> (N,)
    index into PARTICLE_TYPES; -1 where no flag is set."""
    flags = np.asarray(flags)
    return np.where(flags.any(axis=1), flags.argmax(axis=1), -1)


def delta_r(eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(N,), (N,) -> (N, N) pairwise angular distance, phi wrapped."""
    dphi = (phi[:, None] - phi[None, :] + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta[:, None] - eta[None, :], dphi)


class _Mean:
    """Mean and standard error over jets of per-jet values."""

    def __init__(self):
        self.values: list[float] = []

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self.values.append(float(value))

    def summary(self) -> dict:
        v = np.asarray(self.values)
        n = len(v)
        mean = float(v.mean()) if n else float("nan")
        sem = float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        return dict(mean=mean, sem=sem, n_jets=n)


class AttentionStats:
    """Accumulates the statistics of many jets, keyed by (class, record name, variant, head).

    ``variant``: "full" (the model's weights), "qk_only" (U removed from the logits: softmax(QK^T/sqrt(d) + pad))
    or "u_only" (QK^T removed: softmax(U + pad)). ``head`` is an int or "all" (mean over heads).
    """

    def __init__(self):
        self.means: dict = defaultdict(_Mean)
        self.max_hist: dict = defaultdict(lambda: np.zeros(len(MAX_WEIGHT_BINS) - 1, dtype=np.int64))
        self.dr: dict = defaultdict(lambda: np.zeros((3, len(DELTA_R_BINS) - 1)))  # sum w, pairs, sum uniform w
        self.types: dict = defaultdict(lambda: np.zeros((3, len(PARTICLE_TYPES), len(PARTICLE_TYPES))))
        self.cls_rank: dict = defaultdict(lambda: np.zeros((2, 64)))  # sum w at pT rank, jets with that rank
        self.n_jets: dict = defaultdict(int)

    def add_rows(self, keys: list[tuple[str, ...]], name: str, variant: str, weights: torch.Tensor,
                 query_mask: torch.Tensor, key_mask: torch.Tensor, self_offset: int = 0) -> None:
        """Binary-attention statistics of a batch: weights (B, H, Nq, Nk), masks (B, Nq) / (B, Nk); ``keys[b]``: the
        class keys jet b is counted under (e.g. ("Hbb", "all"))."""
        stats = row_statistics(weights, key_mask, self_offset)
        q = query_mask.float()[:, None, :]  # (B, 1, Nq)
        rows = q.sum(-1)[:, 0]  # (B,)
        n_heads = weights.size(1)
        per_jet = {stat: ((values * q).sum(-1) / rows.clamp_min(1)[:, None]).tolist() for stat, values in stats.items()}
        for b, jet_keys in enumerate(keys):
            if rows[b] == 0:
                continue
            for stat, values in per_jet.items():
                for key in jet_keys:
                    for h in range(n_heads):
                        self.means[(key, name, variant, h, stat)].add(values[b][h])
                    self.means[(key, name, variant, "all", stat)].add(sum(values[b]) / n_heads)
        max_w = stats["max_weight"].cpu().numpy()  # (B, H, Nq)
        real = query_mask.cpu().numpy()
        for key in {k for jet_keys in keys for k in jet_keys}:
            jets = np.asarray([key in jet_keys for jet_keys in keys])
            for h in range(n_heads):
                counts = np.histogram(max_w[jets, h][real[jets]], MAX_WEIGHT_BINS)[0]
                self.max_hist[(key, name, variant, h)] += counts
                self.max_hist[(key, name, variant, "all")] += counts

    def add_jet_geometry(self, cls: str, name: str, weights: np.ndarray, dr: np.ndarray, types: np.ndarray) -> None:
        """Attention vs DeltaR and vs partner type for ONE jet: weights (H, n, n) over its n real particles,
        dr (n, n), types (n,) indices into PARTICLE_TYPES (-1: unknown). Self pairs are left out."""
        w = weights.mean(axis=0)  # (n, n), head mean
        n = w.shape[0]
        off = ~np.eye(n, dtype=bool)
        acc = self.dr[(cls, name)]
        idx = np.clip(np.digitize(dr[off], DELTA_R_BINS) - 1, 0, len(DELTA_R_BINS) - 2)
        acc[0] += np.bincount(idx, weights=w[off], minlength=acc.shape[1])
        acc[1] += np.bincount(idx, minlength=acc.shape[1])
        acc[2] += np.bincount(idx, minlength=acc.shape[1]) / n  # uniform attention over the n particles
        known = types >= 0
        t = self.types[(cls, name)]
        for a in range(len(PARTICLE_TYPES)):
            rows = (types == a)
            if not rows.any():
                continue
            for c in range(len(PARTICLE_TYPES)):
                cols = (types == c) & known
                block = w[np.ix_(rows, cols)] * off[np.ix_(rows, cols)]
                t[0, a, c] += block.sum()  # attention given by type a to type c
                t[1, a, c] += off[np.ix_(rows, cols)].sum() / n  # ... if attention were uniform
            t[2, a, :] += rows.sum()  # rows of type a

    def add_cls_ranks(self, cls: str, name: str, weights: np.ndarray) -> None:
        """Class-token attention over one jet's pT-ordered particles: weights (H, n) (class token column dropped)."""
        w = weights.mean(axis=0)[:64]
        acc = self.cls_rank[(cls, name)]
        acc[0, : len(w)] += w
        acc[1, : len(w)] += 1

    def add_subjets(self, cls: str, name: str, shares: dict[str, float]) -> None:
        """One jet's ``subjet_shares``."""
        for key, value in shares.items():
            self.means[(cls, name, "subjets", "all", key)].add(value)

    def summary(self) -> dict:
        """Nested dict for JSON: stats[class][record][variant][head][stat] = {mean, sem, n_jets}, plus the
        max-weight histograms, DeltaR profiles, partner-type matrices and class-token rank profiles."""
        out: dict = {"binary": {}, "max_weight_hist": {}, "delta_r": {}, "partner_type": {}, "cls_rank": {}}
        for (cls, name, variant, head, stat), m in sorted(self.means.items(), key=lambda kv: str(kv[0])):
            out["binary"].setdefault(cls, {}).setdefault(name, {}).setdefault(variant, {}).setdefault(str(head), {})[stat] = m.summary()
        for (cls, name, variant, head), h in self.max_hist.items():
            out["max_weight_hist"].setdefault(cls, {}).setdefault(name, {}).setdefault(variant, {})[str(head)] = h.tolist()
        for (cls, name), (sw, npairs, su) in self.dr.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                out["delta_r"].setdefault(cls, {})[name] = dict(
                    mean_weight=np.where(npairs > 0, sw / npairs, np.nan).tolist(),
                    uniform_weight=np.where(npairs > 0, su / npairs, np.nan).tolist(), pairs=npairs.astype(int).tolist())
        for (cls, name), (given, uniform, rows) in self.types.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                out["partner_type"].setdefault(cls, {})[name] = dict(
                    share=np.where(rows > 0, given / rows, np.nan).tolist(),
                    uniform_share=np.where(rows > 0, uniform / rows, np.nan).tolist(),
                    enrichment=np.where(uniform > 0, given / uniform, np.nan).tolist(), rows=rows[:, 0].astype(int).tolist())
        for (cls, name), (sw, njets) in self.cls_rank.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                out["cls_rank"].setdefault(cls, {})[name] = dict(mean_weight=np.where(njets > 0, sw / njets, np.nan).tolist(),
                                                                 jets=njets.astype(int).tolist())
        out["bins"] = dict(max_weight=MAX_WEIGHT_BINS.tolist(), delta_r=DELTA_R_BINS.tolist(), particle_types=list(PARTICLE_TYPES))
        return out


def subjet_shares(weights: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Where one jet's particles send their attention relative to exclusive-kT subjets.

    Args:
        weights: (H, n, n) over the jet's n real particles.
        labels: (n,) subjet index of each particle.
    Returns:
        intra / inter / self: mean over rows (and heads) of the weight given to other particles of the same
        subjet, to particles of other subjets, to itself; uniform_intra / uniform_inter: the same for uniform
        attention; link_intra: fraction of rows whose strongest non-self partner is in the same subjet, and
        uniform_link_intra its expectation for a partner drawn at random.
    """
    n = weights.shape[-1]
    same = labels[:, None] == labels[None, :]
    eye = np.eye(n, dtype=bool)
    w = weights.mean(axis=0)
    intra = (w * (same & ~eye)).sum(1).mean()
    inter = (w * ~same).sum(1).mean()
    own = np.diag(w).mean()
    n_same = same.sum(1) - 1
    partner = np.where(eye[None], -np.inf, weights).argmax(-1)  # (H, n) strongest other particle
    link_intra = same[np.arange(n)[None, :], partner].mean() if n > 1 else float("nan")
    return dict(intra=float(intra), inter=float(inter), self=float(own), uniform_intra=float((n_same / n).mean()),
                uniform_inter=float(((n - 1 - n_same) / n).mean()), link_intra=float(link_intra),
                uniform_link_intra=float((n_same / max(n - 1, 1)).mean()))
