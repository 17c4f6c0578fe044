"""partx.metrics.pileup / pileup_jets / puppi on hand-made predictions and events (hand-computed values)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from partx.metrics.pileup import binary_metrics, event_bootstrap, particle_metrics, puppi_like_metrics
from partx.metrics.pileup_jets import JetSettings, bootstrap_resolution, cluster, format_table, four_momenta, jet_performance, method_weights, to_json
from partx.metrics.puppi import puppi_weights

sys.path.insert(0, str(Path(__file__).parent))
import pileup_tiny  # noqa: E402

# event A: 2 LV among 6 scored; ranks 1 and 3 are LV (+ one unscored particle with a wrong extreme score)
A = dict(prob=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.99], is_lv=[1, 0, 1, 0, 0, 0, 0], is_scored=[1, 1, 1, 1, 1, 1, 0])
B = dict(prob=[0.3, 0.2], is_lv=[1, 0], is_scored=[1, 1])


def test_roc_auc_and_average_precision_differ_on_an_imbalanced_case():
    m = binary_metrics(np.array(A["prob"][:6]), np.array(A["is_lv"][:6]))
    assert m["roc_auc"] == pytest.approx(7 / 8)  # 7 of the 8 (LV, PU) pairs ordered right
    assert m["average_precision"] == pytest.approx((1 + 2 / 3) / 2)  # precision 1 at rank 1, 2/3 at rank 3
    assert m["accuracy"] == pytest.approx(4 / 6)  # p > 0.5 called LV


def test_pooled_and_per_event_means():
    m = particle_metrics([{k: np.array(v) for k, v in ev.items()} for ev in (A, B)])
    assert m["roc_auc_event_mean"] == pytest.approx((7 / 8 + 1) / 2)
    assert m["average_precision_event_mean"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert m["accuracy_event_mean"] == pytest.approx((4 / 6 + 1 / 2) / 2)
    # pooled over 8 scored particles: LV at ranks 1, 3, 7 of 8 (the unscored 0.99 is ignored)
    assert m["roc_auc"] == pytest.approx(10 / 15)
    assert m["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 7) / 3)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["n_scored"] == 8 and m["n_events"] == 2 and m["lv_fraction"] == pytest.approx(3 / 8)
    one_class = particle_metrics([dict(prob=np.array([0.2, 0.4]), is_lv=np.array([0, 0]), is_scored=np.array([1, 1]))])
    assert np.isnan(one_class["roc_auc"]) and one_class["n_events_skipped_auc"] == 1
    with pytest.raises(ValueError, match="non-finite"):
        particle_metrics([dict(prob=np.array([np.nan]), is_lv=np.array([1]), is_scored=np.array([1]))])


def _event(parts):
    """parts: (pt, eta, phi, charged, is_lv, prob), massless."""
    pt, eta, phi, ch, lv, prob = (np.array(c, dtype=float) for c in zip(*parts))
    return dict(px=pt * np.cos(phi), py=pt * np.sin(phi), e=pt * np.cosh(eta), rapidity=eta, eta=eta, phi=phi, pt=pt,
                charged=ch.astype(bool), is_lv=lv.astype(bool), prob=prob)


HAND = _event([(30, 0.0, 0.0, 1, 1, 0), (10, 0.1, 0.02, 1, 0, 0), (5, -0.1, 0.05, 0, 0, 0.2), (15, 0.05, -0.05, 0, 1, 0.9),
               (40, 1.5, 2.0, 0, 0, 0.1)])


def test_chs_and_no_mitigation_on_a_hand_made_event():
    p4 = [four_momenta(HAND)]

    def jet_pt(method):
        return cluster(p4, [method_weights(HAND, method)])[0]

    def vector_pt(sel):
        return np.hypot(HAND["px"][sel].sum(), HAND["py"][sel].sum())

    assert jet_pt("chs")[:, 0] == pytest.approx([vector_pt([0, 2, 3]), 40.0])  # charged PU (#1) dropped, neutrals kept
    assert jet_pt("none")[:, 0] == pytest.approx([vector_pt([0, 1, 2, 3]), 40.0])
    assert jet_pt("truth")[:, 0] == pytest.approx([vector_pt([0, 3])])
    model = jet_pt("model")  # neutrals scaled by their probability
    assert model[0, 0] == pytest.approx(np.hypot(*(HAND[k][0] + 0.2 * HAND[k][2] + 0.9 * HAND[k][3] for k in ("px", "py"))))


def test_perfect_classifier_jets_equal_truth_jets():
    events = [pileup_tiny.make_event(s) for s in range(3)]
    for ev in events:
        ev["charged"] = ev["charge"] != 0
        ev["prob"] = ev["is_lv"].astype(float)
    p4 = [four_momenta(ev) for ev in events]
    truth = cluster(p4, [method_weights(ev, "truth") for ev in events])
    perfect = cluster(p4, [method_weights(ev, "model") for ev in events])
    assert sum(len(t) for t in truth) > 3
    for t, p in zip(truth, perfect):
        np.testing.assert_allclose(p, t, rtol=1e-9, atol=1e-9)
    perf = jet_performance(events, methods=("none", "chs", "puppi", "model"), settings=JetSettings(pt_bins=(20.0, 60.0, 500.0)))
    model = perf["methods"]["model"]["overall"]
    assert model["response"] == pytest.approx(1.0) and model["resolution"] == pytest.approx(0.0, abs=1e-12)
    assert model["efficiency"] == 1.0
    assert perf["methods"]["none"]["overall"]["response"] > perf["methods"]["chs"]["overall"]["response"] > 1.0
    text = format_table(perf)
    assert "CHS" in text and "PUPPI-like" in text
    import json

    assert json.loads(to_json(perf))["methods"]["model"]["response"][0] is None  # the empty 20-60 GeV bin: null, not NaN


def test_puppi_weight_follows_local_lv_activity():
    # a neutral next to a hard LV charged particle vs an isolated one; the charged PU give the reference
    ev = _event([(50, 0.0, 0.0, 1, 1, 0), (5, 0.05, 0.0, 0, 0, 0), (5, 2.0, 2.0, 0, 0, 0),
                 (1, 0.2, 0.1, 1, 0, 0), (1, -0.25, -0.1, 1, 0, 0), (1, 0.28, 0.0, 1, 0, 0), (2, 0.0, 3.0, 1, 1, 0)])
    w = puppi_weights(ev["eta"], ev["phi"], ev["pt"], ev["charged"], ev["is_lv"])
    assert w[1] > 0.99 and w[2] == 0.0  # alpha far above the PU median vs no LV neighbour at all
    assert list(w[[0, 3, 4, 5, 6]]) == [1, 0, 0, 0, 1]  # charged particles: CHS


def test_bootstrap_resolution_pairs_the_truth_jets():
    rng = np.random.default_rng(0)
    base = 1.0 + 0.1 * rng.standard_normal(400)
    ratios = {"model": base, "same": base.copy(), "wider": 1.0 + 2.0 * (base - 1.0), "unmatched": np.where(np.arange(400) % 2, base, np.nan)}
    boot = bootstrap_resolution(ratios, n_boot=100)
    assert boot["difference"]["same"] == {"diff": 0.0, "se": 0.0}  # identical jets: no difference in any resampling
    wider = boot["difference"]["wider"]
    assert wider["diff"] < 0 and abs(wider["diff"]) > 5 * wider["se"]  # model twice as sharp: clearly better
    # paired SE is smaller than the two unpaired SEs combined (shared truth-jet fluctuations cancel)
    se = boot["resolution_se"]
    assert 0 < wider["se"] < np.hypot(se["model"], se["wider"])
    assert np.isfinite(se["unmatched"])  # unmatched jets (NaN ratio) are left out, not propagated


def test_puppi_like_particle_metrics_use_the_puppi_weight_as_score():
    ev = _event([(50, 0.0, 0.0, 1, 1, 0), (5, 0.05, 0.0, 0, 1, 0), (5, 2.0, 2.0, 0, 0, 0),
                 (1, 0.2, 0.1, 1, 0, 0), (1, -0.25, -0.1, 1, 0, 0), (1, 0.28, 0.0, 1, 0, 0), (2, 0.0, 3.0, 1, 1, 0)])
    ev["is_scored"] = ~ev["charged"]
    m = puppi_like_metrics([ev])
    # the LV neutral sits next to the hard LV track (w ~ 1), the pileup one is isolated (w = 0): perfect ranking
    assert m["roc_auc"] == 1.0 and m["accuracy"] == 1.0 and m["n_scored"] == 2
    assert "w_puppi" in ev and ev["prob"].sum() == 0  # weights cached for the jets; the model's prob untouched


def test_event_bootstrap_pairs_events_and_scores():
    rng = np.random.default_rng(1)
    events = []
    for _ in range(30):
        y = rng.integers(0, 2, 60)
        good = y + 0.8 * rng.standard_normal(60)
        events.append(dict(is_lv=y, is_scored=np.ones(60, bool), prob=good, w_puppi=good.copy(), noise=rng.random(60)))
    boot = event_bootstrap(events, scores=("prob", "w_puppi", "noise"), n_boot=60)
    same, noise = boot["difference"]["w_puppi"], boot["difference"]["noise"]
    assert same["roc_auc"] == {"diff": 0.0, "se": 0.0}  # identical scores: no difference in any resampling
    assert noise["roc_auc"]["diff"] > 5 * noise["roc_auc"]["se"] > 0  # informative vs random score: clearly apart
    assert 0 < boot["se"]["prob"]["roc_auc"] < 0.05
    assert event_bootstrap(events, scores=("prob", "missing"))["difference"] == {}  # a score not in every event is left out


def test_overall_resolution_is_taken_after_a_per_bin_response_calibration():
    from partx.metrics.pileup_jets import _calibrated, resolution

    bins = np.array([20.0, 40.0, 80.0])
    t_pt = np.array([25.0, 30.0, 35.0, 50.0, 60.0, 70.0, 90.0])
    ratio = np.array([1.8, 1.8, 1.8, 1.1, 1.1, 1.1, 5.0])  # sharp in each bin, response falls with pT; last jet outside
    c = _calibrated(ratio, t_pt, bins, [1.8, 1.1])
    np.testing.assert_allclose(c[:6], 1.0)
    assert np.isnan(c[6])
    assert resolution(c[:6]) == 0.0 and resolution(ratio[:6]) > 0.2  # pooled raw ratios would count the response slope
