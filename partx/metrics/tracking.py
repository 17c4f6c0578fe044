"""Tracking metrics on per-hit embeddings: HEPT's acc@k / precision@K / recall@K, track building by DBSCAN,
double-majority and LHC efficiencies, fake rates, and the TrackML score.

**acc@k (HEPT, Graph-COM/HEPT ``src/utils/metrics.py`` ``acc_and_pr_at_k`` / ``calc_scores``)**, per event:
  * queries: hits with particle_id != 0, reconstructable, pT > thr (thr in {0, 0.5, 0.9} -> ``accuracy@thr``);
  * k = (number of hits of the query's particle in the event) - 1; queries with k = 0 are skipped;
  * neighbours: the K = 19 nearest hits in L2 embedding distance among *all* hits of the event (noise
    included), the query itself excluded (HEPT takes the top K + 1 and drops the first, i.e. assumes the
    query is its own nearest neighbour; here self is excluded explicitly, which differs only for exact
    duplicate embeddings);
  * accuracy@k = (same-particle hits among the first k neighbours) / k; precision@K = matches in K / K;
    recall@K = matches in K / k;
  * each is averaged over the queries of the event, then over events.
  Lampa's metric (chengjiang123/Lampa ``utils/metrics.py`` ``calc_scores_with_efficiency_cluster_ids``) also
  skips every query with no same-particle hit among its K neighbours, which raises all three numbers;
  ``skip_zero_match=True`` reproduces it, for comparison only.
  HEPT asserts k <= K; here ``K=None`` takes K = max k of the event (precision@K then changes meaning and is
  reported under that K).

**Track building**: DBSCAN on the embeddings (``min_samples`` 1 by default, so every hit gets a track; eps
tuned on validation by ``tune_dbscan_eps``).

**Efficiencies** over *target particles* (particle_id != 0, reconstructable, pT > pt_min):
  * double majority (DM): a particle is found if some track has > 50% of its hits from the particle and
    holds > 50% of the particle's hits (the TrackML / Exa.TrkX definition; strict on both sides);
  * LHC: a particle is found if some track has >= 75% of its hits from it (the track's majority particle);
  * fake rates: fraction of tracks with >= ``min_track_hits`` hits that match no particle under the rule
    (DM or LHC), any particle counting (not only targets).
  ``efficiency_vs`` bins the found / target flags in pT or eta.

**TrackML score** (LAL/trackml-library ``trackml/score.py`` ``score_event``): for each track its majority
particle (most hits; ties -> smallest particle id, as the library's sorted scan); the track is good if
> 50% of its hits are from that particle and it holds > 50% of the particle's hits; the score is the summed
truth ``weight`` of the majority hits of good tracks, divided by the total weight of the event.
"""

from __future__ import annotations

import math

import numpy as np
import torch

PT_THRESHOLDS = (0.0, 0.5, 0.9)


def query_mask(particle_id: np.ndarray, reconstructable: np.ndarray, pt: np.ndarray, pt_thres: float) -> np.ndarray:
    """HEPT ``point_filter``: particle_id != 0, reconstructable, pT > pt_thres."""
    return (particle_id != 0) & (reconstructable != 0) & (pt > pt_thres)


def knn_indices(emb: torch.Tensor, queries: torch.Tensor, K: int, chunk: int = 4096) -> torch.Tensor:
    """Indices (Q, K) of the K nearest hits (L2) of each query hit, self excluded. emb (N, E), queries (Q,) long."""
    out = []
    for s in range(0, len(queries), chunk):
        q = queries[s : s + chunk]
        d = torch.cdist(emb[q], emb)
        d[torch.arange(len(q)), q] = math.inf
        out.append(d.topk(min(K, emb.shape[0] - 1), dim=1, largest=False, sorted=True).indices)
    return torch.cat(out) if out else torch.zeros(0, K, dtype=torch.long)


@torch.no_grad()
def acc_and_pr_at_k(
    emb, particle_id, mask, K: int | None = 19, skip_zero_match: bool = False
) -> tuple[float, float, float]:
    """(accuracy@k, precision@K, recall@K) of one event, means over its queries (nan if none).

    Args:
        emb: (N, E) embeddings (tensor or array).
        particle_id: (N,) ints; mask: (N,) bool query mask (``query_mask``).
        K: neighbours looked at (HEPT: 19); None = max k of the event.
        skip_zero_match: Lampa's rule (skip queries without any match in K); off = HEPT.
    """
    emb = torch.as_tensor(np.asarray(emb, dtype=np.float32))
    pid = np.asarray(particle_id)
    mask = np.asarray(mask, dtype=bool)
    ids, inv, counts = np.unique(pid, return_inverse=True, return_counts=True)
    k = counts[inv] - 1  # same-particle hits of each hit
    q = np.nonzero(mask & (k > 0))[0]
    if len(q) == 0:
        return (math.nan, math.nan, math.nan)
    kq = k[q]
    if K is None:
        K = int(kq.max())
    # HEPT asserts k <= K; loopers with more than K + 1 pixel hits do occur (real and generated events), so
    # accuracy@k looks at max(K, k) neighbours (each query still uses exactly its own k), and precision /
    # recall at K at the first K only: identical to HEPT whenever HEPT's assertion holds.
    nb = knn_indices(emb, torch.as_tensor(q), max(K, int(kq.max()))).numpy()
    matches = pid[nb] == pid[q][:, None]  # (Q, max(K, k))
    first_k = np.arange(nb.shape[1])[None, :] < kq[:, None]
    acc = (matches & first_k).sum(1) / kq
    in_K = matches[:, :K].sum(1)
    prec = in_K / K
    rec = in_K / kq
    if skip_zero_match:
        keep = matches.sum(1) > 0
        if not keep.any():
            return (math.nan, math.nan, math.nan)
        acc, prec, rec = acc[keep], prec[keep], rec[keep]
    return float(acc.mean()), float(prec.mean()), float(rec.mean())


def knn_metrics(events, thresholds=PT_THRESHOLDS, K: int | None = 19, skip_zero_match: bool = False) -> dict[str, float]:
    """HEPT's logged metrics over events: ``accuracy@thr``, ``precision@thr``, ``recall@thr``, each the mean over
    events of the per-event means (events without queries are left out).

    Args:
        events: iterable of dicts with ``emb`` (N, E), ``particle_id``, ``reconstructable``, ``pt`` (N,).
    """
    per = {f"{n}@{t}": [] for t in thresholds for n in ("accuracy", "precision", "recall")}
    for ev in events:
        pid, rec, pt = (np.asarray(ev[k]) for k in ("particle_id", "reconstructable", "pt"))
        for t in thresholds:
            a, p, r = acc_and_pr_at_k(ev["emb"], pid, query_mask(pid, rec, pt, t), K=K, skip_zero_match=skip_zero_match)
            if not math.isnan(a):
                per[f"accuracy@{t}"].append(a)
                per[f"precision@{t}"].append(p)
                per[f"recall@{t}"].append(r)
    return {k: float(np.mean(v)) if v else math.nan for k, v in per.items()}


def build_tracks(emb, eps: float, min_samples: int = 1) -> np.ndarray:
    """DBSCAN track labels (N,) on embeddings (N, E); with min_samples > 1 unclustered hits get -1."""
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(np.asarray(emb, dtype=np.float32))


def _track_particle_table(track: np.ndarray, pid: np.ndarray):
    """Unique (track, particle) pairs with their shared hit count, plus per-track and per-particle sizes."""
    pairs, shared = np.unique(np.stack([track, pid]), axis=1, return_counts=True)
    t_ids, t_size = np.unique(track, return_counts=True)
    p_ids, p_size = np.unique(pid, return_counts=True)
    tsz = t_size[np.searchsorted(t_ids, pairs[0])]
    psz = p_size[np.searchsorted(p_ids, pairs[1])]
    return pairs, shared, tsz, psz


def match_tracks(track, particle_id, min_track_hits: int = 1) -> dict[str, np.ndarray]:
    """Particles found and tracks matched under the DM and LHC rules (see module doc).

    Returns dict with ``particles`` (unique ids), ``dm_found`` / ``lhc_found`` (per particle), ``tracks``,
    ``track_size``, ``dm_matched`` / ``lhc_matched`` (per track). Hits with track -1 belong to no track."""
    track, pid = np.asarray(track), np.asarray(particle_id)
    real = track >= 0
    pairs, shared, tsz, psz = _track_particle_table(track[real], pid[real])
    p_all, p_size = np.unique(pid, return_counts=True)
    psz = p_size[np.searchsorted(p_all, pairs[1])]  # particle size over all its hits, tracked or not
    dm = (shared / tsz > 0.5) & (shared / psz > 0.5)
    lhc = shared / tsz >= 0.75
    big = tsz >= min_track_hits
    tracks, track_size = np.unique(track[real], return_counts=True)
    ti = np.searchsorted(tracks, pairs[0])
    dm_t, lhc_t = np.zeros(len(tracks), bool), np.zeros(len(tracks), bool)
    np.logical_or.at(dm_t, ti, dm)
    np.logical_or.at(lhc_t, ti, lhc)
    pi = np.searchsorted(p_all, pairs[1])
    dm_p, lhc_p = np.zeros(len(p_all), bool), np.zeros(len(p_all), bool)
    np.logical_or.at(dm_p, pi, dm & big)
    np.logical_or.at(lhc_p, pi, lhc & big)
    return dict(particles=p_all, dm_found=dm_p, lhc_found=lhc_p, tracks=tracks, track_size=track_size, dm_matched=dm_t, lhc_matched=lhc_t)


def track_efficiencies(track, particle_id, reconstructable, pt, pt_min: float = 0.9, min_track_hits: int = 3) -> dict[str, float]:
    """DM and LHC efficiencies over target particles and fake rates over tracks with >= min_track_hits hits."""
    pid, rec, pt = np.asarray(particle_id), np.asarray(reconstructable), np.asarray(pt)
    m = match_tracks(track, pid, min_track_hits)
    target_hit = query_mask(pid, rec, pt, pt_min)
    targets = np.isin(m["particles"], np.unique(pid[target_hit]))
    counted = m["track_size"] >= min_track_hits
    out = {
        "n_target_particles": int(targets.sum()),
        "n_tracks": int(counted.sum()),
        "dm_efficiency": float(m["dm_found"][targets].mean()) if targets.any() else math.nan,
        "lhc_efficiency": float(m["lhc_found"][targets].mean()) if targets.any() else math.nan,
        "dm_fake_rate": float(1 - m["dm_matched"][counted].mean()) if counted.any() else math.nan,
        "lhc_fake_rate": float(1 - m["lhc_matched"][counted].mean()) if counted.any() else math.nan,
    }
    return out


def efficiency_vs(values, found, bins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Efficiency per bin of ``values`` (e.g. particle pT or eta): returns (efficiency, n_target, n_found)."""
    values, found = np.asarray(values), np.asarray(found, dtype=bool)
    n, _ = np.histogram(values, bins)
    k, _ = np.histogram(values[found], bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return k / n, n, k


def trackml_score(track, particle_id, weight) -> float:
    """TrackML event score (trackml-library ``score_event``; see module doc). All arrays (N,) per hit."""
    track, pid, w = np.asarray(track).copy(), np.asarray(particle_id), np.asarray(weight, dtype=np.float64)
    lone = track < 0  # unassigned hits (DBSCAN noise): one track each, as a submission must give every hit a track
    track[lone] = track.max(initial=0) + 1 + np.arange(lone.sum())
    total = w.sum()
    if total <= 0:
        return math.nan
    pairs, inv = np.unique(np.stack([track, pid]), axis=1, return_inverse=True)
    inv = inv.reshape(-1)
    shared = np.bincount(inv, minlength=pairs.shape[1])
    wsum = np.bincount(inv, weights=w, minlength=pairs.shape[1])
    # majority particle per track: most shared hits, ties -> smallest particle id (pairs sorted by (track, pid))
    order = np.lexsort((pairs[1], -shared, pairs[0]))
    first = np.ones(len(order), bool)
    first[1:] = pairs[0, order[1:]] != pairs[0, order[:-1]]
    maj = order[first]
    t_ids, t_size = np.unique(track, return_counts=True)
    p_ids, p_size = np.unique(pid, return_counts=True)
    nt = t_size[np.searchsorted(t_ids, pairs[0, maj])]
    npart = p_size[np.searchsorted(p_ids, pairs[1, maj])]
    good = (shared[maj] / nt > 0.5) & (shared[maj] / npart > 0.5)
    return float(wsum[maj][good].sum() / total)


def tune_dbscan_eps(events, eps_grid, pt_min: float = 0.9, min_samples: int = 1, key: str = "dm_efficiency") -> tuple[float, dict]:
    """Pick the DBSCAN eps maximising the mean ``key`` over (validation) events; returns (eps, {eps: score})."""
    scores = {}
    for eps in eps_grid:
        vals = [
            track_efficiencies(build_tracks(ev["emb"], eps, min_samples), ev["particle_id"], ev["reconstructable"], ev["pt"], pt_min)[key]
            for ev in events
        ]
        scores[float(eps)] = float(np.nanmean(vals))
    best = max(scores, key=lambda e: (scores[e], -e))
    return best, scores
