"""Contrastive InfoNCE losses on per-hit embeddings, as HEPT and Lampa train their tracking models.

Two named variants:

  * ``"hept_radius"`` (Graph-COM/HEPT ``src/utils/losses.py`` ``InfoNCELoss``; pairs from
    ``src/datasets/tracking.py`` ``gen_point_pairs``; augmentation ``src/tracking_trainer.py`` ``process_data``):
    candidate pairs per event = for every particle (id != 0, >= 2 hits) all (hit, hit') pairs inside the
    particle plus (hit, neighbour) for every eta-phi neighbour of any of its hits within radius 1.0 (at most
    256 neighbours per hit), made undirected, self-pairs dropped; in training 20% more uniformly random pairs
    (``int(P * 0.2 / 2)`` drawn, made undirected). Positives: both hits of the same particle, both
    reconstructable, both pT > 0.9 GeV; every other candidate pair is a negative. Loss per positive pair
    (i, j): ``-log(e_ij / (e_ij + sum_{negatives (i, k)} e_ik))`` with ``e = exp(s / tau)`` (shifted by the max
    for stability), averaged per particle, then over particles.
  * ``"lampa_knn"`` (chengjiang123/Lampa ``utils/losses.py`` ``knnInfoNCELoss``): candidate pairs = the
    undirected k = 60 nearest-neighbour graph in eta-phi (self-loops included, as Lampa's
    ``knn_graph(loop=True)``), same positive rule, loss averaged over all positive pairs.

Similarity (both): ``s = exp(-d / (2 sigma^2))``, sigma = 0.75, with d the *L2 distance* (not its square:
HEPT's ``l2_rbf`` code uses ``torch.linalg.norm``), tau = 0.05.

One deliberate difference from HEPT's code: HEPT gathers each anchor's negative sum with
``deterministic_scatter`` (one output per anchor *that has negatives*) and then indexes it by hit id, which
is only right when every hit 0..n-1 has a negative; here the denominator is a dense per-hit sum (0 for a hit
without negatives), i.e. what HEPT's code intends.

Pair building uses scikit-learn neighbour searches on CPU (it is data preparation, without gradients);
the loss runs on any device.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

VARIANTS = ("hept_radius", "lampa_knn")


def _undirected_unique(pairs: np.ndarray, drop_self: bool = True) -> np.ndarray:
    """(2, P) int -> both directions, deduplicated (sorted by source), self-pairs dropped if asked."""
    both = np.concatenate([pairs, pairs[::-1]], axis=1).astype(np.int64, copy=False)
    if drop_self:
        both = both[:, both[0] != both[1]]
    if not both.size:
        return both.reshape(2, 0)
    # np.unique(both, axis=1) sorts (2, P) columns as structured records; one int64 key per pair sorts the same
    # way (source, then destination) several times faster (P reaches millions per event)
    n = int(both.max()) + 1
    keys = np.unique(both[0] * n + both[1])
    return np.stack([keys // n, keys % n])


def radius_neighbours(pos: np.ndarray, radius: float = 1.0, max_neighbors: int = 256) -> np.ndarray:
    """Undirected radius graph (2, P) on pos (N, 2) (eta, phi; Euclidean, no phi wrap, as HEPT's
    ``radius_graph``), at most ``max_neighbors`` per hit (the nearest ones; torch_cluster keeps an
    arbitrary subset), no self-loops."""
    nn_ = NearestNeighbors(radius=radius).fit(pos)
    dist, idx = nn_.radius_neighbors(pos, sort_results=True)
    src, dst = [], []
    for i, (d, j) in enumerate(zip(dist, idx)):
        j = j[j != i][:max_neighbors]
        src.append(np.full(len(j), i))
        dst.append(j)
    pairs = np.stack([np.concatenate(src), np.concatenate(dst)]) if src else np.zeros((2, 0), int)
    return _undirected_unique(pairs.astype(np.int64))


def hept_point_pairs(pos: np.ndarray, particle_id: np.ndarray, radius: float = 1.0, max_neighbors: int = 256) -> np.ndarray:
    """HEPT's candidate pairs for one event (see module doc). pos (N, 2), particle_id (N,) -> (2, P) int64."""
    near = radius_neighbours(pos, radius, max_neighbors)
    pid = np.asarray(particle_id)
    out = []
    order = np.argsort(pid, kind="stable")
    ids, starts, counts = np.unique(pid[order], return_index=True, return_counts=True)
    # neighbour lists by source hit (near is sorted by source)
    nb_start = np.searchsorted(near[0], np.arange(len(pid) + 1))
    for p, s, c in zip(ids, starts, counts):
        if p == 0 or c <= 1:
            continue
        hits = order[s : s + c]
        nbrs = np.unique(np.concatenate([near[1, nb_start[h] : nb_start[h + 1]] for h in hits]))
        out.append(np.stack(np.meshgrid(hits, nbrs, indexing="ij")).reshape(2, -1))  # product(hits, nbrs)
        a, b = np.triu_indices(c, k=1)
        out.append(np.stack([hits[a], hits[b]]))  # combinations(hits, 2)
    if not out:
        return np.zeros((2, 0), np.int64)
    return _undirected_unique(np.concatenate(out, axis=1).astype(np.int64))


def knn_point_pairs(pos: np.ndarray, k: int = 60) -> np.ndarray:
    """Lampa's pairs: undirected kNN graph (k neighbours incl. the hit itself, as ``knn_graph(loop=True)``)."""
    k = min(k, len(pos))
    idx = NearestNeighbors(n_neighbors=k).fit(pos).kneighbors(pos, return_distance=False)
    pairs = np.stack([np.repeat(np.arange(len(pos)), k), idx.reshape(-1)]).astype(np.int64)
    return _undirected_unique(pairs, drop_self=False)


def add_random_pairs(pairs: torch.Tensor, n_hits: int, frac: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """HEPT's training augmentation: ``int(P * frac / 2)`` uniform random pairs, both directions, appended."""
    n = int(pairs.shape[1] * frac / 2)
    extra = torch.randint(0, n_hits, (2, n), generator=generator).to(pairs.device)
    return torch.cat([pairs, extra, extra.flip(0)], dim=1)


def rbf_similarity(x: torch.Tensor, pairs: torch.Tensor, sigma: float = 0.75) -> torch.Tensor:
    """``exp(-|x_i - x_j| / (2 sigma^2))`` for each pair. x (N, E), pairs (2, P) -> (P,)."""
    d = torch.linalg.norm(x[pairs[0]] - x[pairs[1]], dim=-1)
    return torch.exp(-d / (2 * sigma**2))


def positive_pairs(pairs: torch.Tensor, particle_id: torch.Tensor, reconstructable: torch.Tensor, pt: torch.Tensor, pt_thres: float = 0.9) -> torch.Tensor:
    """(P,) bool: same particle, both reconstructable, both pT > pt_thres (HEPT ``pair_filter``)."""
    ok = (reconstructable != 0) & (pt > pt_thres)
    return (particle_id[pairs[0]] == particle_id[pairs[1]]) & ok[pairs[0]] & ok[pairs[1]]


def info_nce(
    x: torch.Tensor,
    pairs: torch.Tensor,
    particle_id: torch.Tensor,
    reconstructable: torch.Tensor,
    pt: torch.Tensor,
    variant: str = "hept_radius",
    tau: float = 0.05,
    sigma: float = 0.75,
    pt_thres: float = 0.9,
) -> torch.Tensor:
    """InfoNCE of one event.

    Args:
        x: (N, E) embeddings.
        pairs: (2, P) candidate pairs (``hept_point_pairs`` / ``knn_point_pairs``, + ``add_random_pairs``).
        particle_id, reconstructable, pt: (N,) per-hit truth.
        variant: "hept_radius" (mean per particle, then over particles) or "lampa_knn" (mean over pairs).
    Returns:
        scalar loss (0 with a graph if the event has no positive pair).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown InfoNCE variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    pos = positive_pairs(pairs, particle_id, reconstructable, pt, pt_thres)
    if not bool(pos.any()):
        return x.sum() * 0.0
    logits = rbf_similarity(x, pairs, sigma) / tau
    e = torch.exp(logits - logits.max())
    neg_sum = torch.zeros(x.shape[0], dtype=e.dtype, device=x.device).index_add(0, pairs[0][~pos], e[~pos])
    num = e[pos]
    loss = -torch.log(num / (num + neg_sum[pairs[0][pos]]))
    if variant == "lampa_knn":
        return loss.mean()
    _, group = torch.unique(particle_id[pairs[0][pos]], return_inverse=True)
    n_groups = int(group.max()) + 1
    per = torch.zeros(n_groups, dtype=loss.dtype, device=x.device).index_add(0, group, loss)
    cnt = torch.zeros(n_groups, dtype=loss.dtype, device=x.device).index_add(0, group, torch.ones_like(loss))
    return (per / cnt).mean()


def batched_info_nce(
    emb: torch.Tensor,
    pairs: list[torch.Tensor],
    particle_id: torch.Tensor,
    reconstructable: torch.Tensor,
    pt: torch.Tensor,
    mask: torch.Tensor,
    **kw,
) -> torch.Tensor:
    """Mean of ``info_nce`` over the events of a padded batch. emb (B, N, E); pairs: B tensors (2, P_b)
    indexing the real hits of each event; particle_id, reconstructable, pt, mask (B, N)."""
    losses = []
    for b in range(emb.shape[0]):
        idx = mask[b].nonzero().squeeze(1)
        losses.append(info_nce(emb[b, idx], pairs[b], particle_id[b, idx], reconstructable[b, idx], pt[b, idx], **kw))
    return torch.stack(losses).mean()
