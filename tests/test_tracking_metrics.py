"""Tracking loss and metrics on hand-made events with known answers."""

import math

import numpy as np
import pytest
import torch

from partx.losses.infonce import add_random_pairs, hept_point_pairs, info_nce, knn_point_pairs
from partx.metrics.tracking import (
    acc_and_pr_at_k,
    build_tracks,
    efficiency_vs,
    knn_metrics,
    query_mask,
    track_efficiencies,
    trackml_score,
    tune_dbscan_eps,
)

# ---------------------------------------------------------------- InfoNCE


def test_hept_pairs_by_hand():
    pos = np.array([[0, 0], [0.5, 0], [0.8, 0], [3, 0], [3.2, 0], [0.2, 0.3]], float)
    pid = np.array([1, 1, 2, 3, 3, 0])
    got = {tuple(p) for p in hept_point_pairs(pos, pid, radius=1.0).T.tolist()}
    want = {(0, 1), (0, 2), (0, 5), (1, 2), (1, 5), (3, 4)}
    assert got == want | {(b, a) for a, b in want}
    knn = knn_point_pairs(pos, k=2)  # self + nearest, both directions
    assert {(i, i) for i in range(6)} <= {tuple(p) for p in knn.T.tolist()}
    aug = add_random_pairs(torch.from_numpy(hept_point_pairs(pos, pid)), 6, frac=0.5, generator=torch.Generator().manual_seed(0))
    assert aug.shape[1] == 12 + 2 * 3


def _loss_by_hand(x, pairs, pid, ok, tau=0.05, sigma=0.75, per_particle=True):
    sim = {}
    for i, j in pairs:
        sim[(i, j)] = math.exp(math.exp(-float(np.linalg.norm(x[i] - x[j])) / (2 * sigma**2)) / tau)
    pos = [(i, j) for i, j in pairs if pid[i] == pid[j] and ok[i] and ok[j]]
    neg = [(i, j) for i, j in pairs if (i, j) not in pos]
    per = {}
    for i, j in pos:
        den = sum(sim[p] for p in neg if p[0] == i)
        per.setdefault(pid[i], []).append(-math.log(sim[(i, j)] / (sim[(i, j)] + den)))
    if per_particle:
        return float(np.mean([np.mean(v) for v in per.values()]))
    return float(np.mean([v for vs in per.values() for v in vs]))


@pytest.mark.parametrize("variant", ["hept_radius", "lampa_knn"])
def test_info_nce_matches_hand_formula(variant):
    rng = np.random.default_rng(0)
    pos = np.array([[0, 0], [0.5, 0], [0.8, 0], [3, 0], [3.2, 0], [0.2, 0.3], [0.4, 0.1]], float)
    pid = np.array([1, 1, 2, 3, 3, 0, 1])
    ok = np.array([1, 1, 1, 1, 1, 0, 1], bool)
    pairs = hept_point_pairs(pos, pid) if variant == "hept_radius" else knn_point_pairs(pos, k=3)
    x = rng.normal(size=(7, 3))
    pt = torch.tensor(np.where(ok, 2.0, 0.5))
    got = info_nce(torch.tensor(x), torch.from_numpy(pairs), torch.tensor(pid), torch.ones(7), pt, variant=variant)
    want = _loss_by_hand(x, pairs.T.tolist(), pid, ok, per_particle=variant == "hept_radius")
    assert got.item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("variant", ["hept_radius", "lampa_knn"])
def test_info_nce_perfect_clusters_beat_random(variant):
    rng = np.random.default_rng(1)
    n_p, hits = 12, 6
    pid = np.repeat(np.arange(1, n_p + 1), hits)
    pos = rng.normal(size=(n_p, 2))[pid - 1] + 0.2 * rng.normal(size=(len(pid), 2))
    pairs = torch.from_numpy(hept_point_pairs(pos, pid) if variant == "hept_radius" else knn_point_pairs(pos, k=10))
    centres = rng.normal(size=(n_p, 8)) * 10
    perfect = torch.tensor(centres[pid - 1])
    random = torch.tensor(rng.normal(size=(len(pid), 8)) * 10)
    args = (pairs, torch.tensor(pid), torch.ones(len(pid)), torch.full((len(pid),), 2.0))
    lp, lr = info_nce(perfect, *args, variant=variant), info_nce(random, *args, variant=variant)
    assert lp < 0.5 * lr


# ---------------------------------------------------------------- acc@k

# 1-D embeddings; K = 3 neighbours. A (pid 1, pT 1.2): 3 hits close together; B (pid 2, pT 0.6): two hits
# among noise, the one at 10.0 has no B hit in its 3 neighbours, the one at 10.25 has B third.
# C (pid 3) not reconstructable: never a query, but its hits are neighbours like any other.
EMB = np.array([0.0, 0.1, 0.25, 10.0, 10.25, 10.1, 10.2, 9.95, 100.0, 100.1])[:, None]
PID = np.array([1, 1, 1, 2, 2, 0, 0, 0, 3, 3])
REC = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
PT = np.array([1.2, 1.2, 1.2, 0.6, 0.6, 0, 0, 0, 5, 5])


def test_acc_at_k_by_hand():
    # pT > 0.5: queries A x3 (acc 1, prec 2/3, rec 1), B@10.0 (0, 0, 0), B@10.25 (acc 0, prec 1/3, rec 1)
    a, p, r = acc_and_pr_at_k(EMB, PID, query_mask(PID, REC, PT, 0.5), K=3)
    assert (a, p, r) == pytest.approx((3 / 5, 7 / 15, 4 / 5))
    # Lampa's rule drops B@10.0 (no match among its neighbours): every number goes up
    a, p, r = acc_and_pr_at_k(EMB, PID, query_mask(PID, REC, PT, 0.5), K=3, skip_zero_match=True)
    assert (a, p, r) == pytest.approx((3 / 4, 7 / 12, 1.0))
    # pT > 0.9: only A
    assert acc_and_pr_at_k(EMB, PID, query_mask(PID, REC, PT, 0.9), K=3) == pytest.approx((1.0, 2 / 3, 1.0))
    # HEPT asserts k <= K; partx lets a particle with more hits (a looper) use its own k for accuracy,
    # while precision and recall stay "at K": A x3 (acc 1, prec 1, rec 1/2), B x2 (0, 0, 0)
    assert acc_and_pr_at_k(EMB, PID, query_mask(PID, REC, PT, 0.5), K=1) == pytest.approx((3 / 5, 3 / 5, 1.5 / 5))


def test_metrics_average_events_not_hits():
    ev1 = dict(emb=EMB, particle_id=PID, reconstructable=REC, pt=PT)
    ev2 = dict(emb=np.array([[0.0], [0.1], [5.0], [5.1]]), particle_id=np.array([7, 7, 8, 8]), reconstructable=np.ones(4), pt=np.ones(4))
    m = knn_metrics([ev1, ev2], thresholds=(0.0, 0.5, 0.9), K=3)
    assert m["accuracy@0.5"] == pytest.approx((3 / 5 + 1.0) / 2)  # per event, then mean (pooled: 6/9)
    assert m["recall@0.9"] == pytest.approx(1.0)
    assert m["precision@0.9"] == pytest.approx((2 / 3 + 1 / 3) / 2)


# ---------------------------------------------------------------- tracks, DM / LHC, TrackML score

# P1: 4 hits, P2: 6 hits, P3: 2 hits (pT 0.5, not a target), one noise hit (pid 0).
# T1 = P1 x3 + P2 x1  -> 75% P1, holds 3/4 of P1: DM and LHC match P1
# T2 = P2 x3          -> 100% P2 but holds only 3/6 of P2: LHC match, not DM
# T3 = P1 x1 + P2 x2 + P3 x2 -> no majority: fake under both rules
# T4 = the noise hit (1 hit: below min_track_hits, not counted)
TRACK = np.array([1, 1, 1, 3, 1, 2, 2, 2, 3, 3, 3, 3, 4])
TPID = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 0])
TPT = np.array([2.0] * 10 + [0.5, 0.5, 0.0])
TREC = np.array([1] * 12 + [0])


def test_dm_lhc_efficiencies_and_fakes_by_hand():
    e = track_efficiencies(TRACK, TPID, TREC, TPT, pt_min=0.9, min_track_hits=3)
    assert e["n_target_particles"] == 2 and e["n_tracks"] == 3
    assert e["dm_efficiency"] == pytest.approx(0.5)
    assert e["lhc_efficiency"] == pytest.approx(1.0)
    assert e["dm_fake_rate"] == pytest.approx(2 / 3)
    assert e["lhc_fake_rate"] == pytest.approx(1 / 3)


def test_trackml_score_by_hand():
    w = np.where(TPID > 0, 1.0, 0.0)
    # only T1 is good (P1: 3/4 of the track, 3/4 of the particle): 3 of 12 weight units. T3's tie P2/P3
    # goes to the smaller id (P2: 2/5), not good either way; the noise track has weight 0.
    assert trackml_score(TRACK, TPID, w) == pytest.approx(3 / 12)
    assert trackml_score(TPID, TPID, w) == pytest.approx(1.0)  # perfect tracks


def test_dbscan_tracks_and_efficiency_binning():
    rng = np.random.default_rng(0)
    pid = np.repeat(np.arange(1, 9), 5)
    emb = rng.normal(size=(8, 4))[pid - 1] * 10 + 0.01 * rng.normal(size=(40, 4))
    tracks = build_tracks(emb, eps=0.5)
    assert trackml_score(tracks, pid, np.ones(40)) == pytest.approx(1.0)
    ev = dict(emb=emb, particle_id=pid, reconstructable=np.ones(40), pt=np.full(40, 2.0))
    eps, scores = tune_dbscan_eps([ev], [1e-4, 0.5, 1e3])
    assert eps == 0.5 and scores[0.5] == 1.0 and scores[1e3] < 1.0
    eff, n, k = efficiency_vs([0.5, 1.5, 2.5, 2.7], [True, False, True, False], bins=[0, 1, 2, 3])
    assert eff.tolist() == [1.0, 0.0, 0.5] and n.tolist() == [1, 1, 2]
