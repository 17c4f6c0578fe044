"""Jet metrics: exact values on constructed scores, and clear errors on bad input."""

import numpy as np
import pytest
import uproot

from pathlib import Path

from partx.metrics.jets import REJECTION_WORKING_POINTS, jet_metrics, rejection_at
from partx.metrics.predictions import PredictionFileError, load_weaver_predictions

NAMES = ["label_QCD", "label_Hbb", "label_Tbqq"]


def test_rejection_at_fixed_signal_efficiency():
    signal = np.linspace(0.5, 1.0, 101)  # median 0.75
    background = np.array([0.1] * 90 + [0.8] * 10)  # 10% above the 50%-efficiency cut
    assert rejection_at(signal, background, 0.5) == pytest.approx(10.0)
    assert rejection_at(signal, np.zeros(50), 0.5) == float("inf")


def test_perfect_and_random_classifiers():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 300)
    perfect = np.eye(3)[labels] * 0.9 + 0.05
    m = jet_metrics(perfect, labels, NAMES)
    assert m.accuracy == 1.0 and m.auc == pytest.approx(1.0) and m.auc_ovr == pytest.approx(1.0)
    assert m.rejection["label_Hbb"] == float("inf") and m.n_background == 300
    assert m.working_point == {"label_Hbb": 0.5, "label_Tbqq": 0.5}
    assert "no QCD jet passes" in m.table()
    noise = rng.dirichlet(np.ones(3), size=900)
    r = jet_metrics(noise, labels, NAMES)
    assert 0.25 < r.accuracy < 0.42 and 0.45 < r.auc < 0.55
    assert 1.0 <= r.rejection["label_Hbb"] < 3.0  # ~2 at 50% efficiency for a random score


@pytest.mark.parametrize("scores,labels,match", [
    (np.full((4, 3), np.nan), np.zeros(4), "non-finite"),
    (np.ones((4, 2)), np.zeros(4), r"scores must be \(n_jets, 3\)"),
    (np.ones((4, 3)), np.zeros(5), "labels must be"),
    (np.ones((0, 3)), np.zeros(0), "no jets"),
])
def test_bad_inputs_are_named(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        jet_metrics(scores, labels, NAMES)


FIXTURE = Path(__file__).parent / "fixtures" / "metric_reference.npz"


def test_auc_is_weavers_one_vs_one_from_a_fixture_made_by_running_weaver():
    """tests/fixtures/make_metric_reference.py ran weaver's evaluate_metrics(["roc_auc_score"])."""
    ref = np.load(FIXTURE)
    m = jet_metrics(ref["scores"], ref["labels"], list(ref["label_names"]))
    assert m.auc == pytest.approx(float(ref["weaver_roc_auc_score"]), abs=1e-6)
    # the fixture's classes are unbalanced, so the conventions differ: reporting ovr as "AUC" would fail
    assert abs(m.auc_ovr - m.auc) > 1e-3
    from weaver.utils.nn.metrics import evaluate_metrics  # and the installed weaver still agrees

    live = evaluate_metrics(ref["labels"], ref["scores"], eval_metrics=["roc_auc_score"])["roc_auc_score"]
    assert m.auc == pytest.approx(live, abs=1e-6)


def test_working_points_are_the_papers_table_2():
    # ParT paper (arXiv:2202.03772) Table 2 column heads: Rej50% for every class except
    # H->lvqq' (Rej99%) and t->blv (Rej99.5%); t->bqq' is at 50%.
    assert REJECTION_WORKING_POINTS["label_Tbqq"] == 0.5
    assert REJECTION_WORKING_POINTS["label_Tbl"] == 0.995
    assert REJECTION_WORKING_POINTS["label_Hqql"] == 0.99
    assert {k for k, v in REJECTION_WORKING_POINTS.items() if v == 0.5} == {
        "label_Hbb", "label_Hcc", "label_Hgg", "label_H4q", "label_Zqq", "label_Wqq", "label_Tbqq"}


def test_rejection_is_weavers_bkg_rejection():
    """weaver-core's definition (weaver/utils/nn/metrics.py, ``_bkg_rejection``, commented out there):
    the first ROC point with tpr > sig_eff, rejection 1 / fpr. Restated here as weaver writes it."""
    from sklearn.metrics import roc_curve

    def weaver_bkg_rejection(y_true, y_score, sig_eff):
        fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
        idx = next(idx for idx, v in enumerate(tpr) if v > sig_eff)
        return 1.0 / fpr[idx]

    ref = np.load(FIXTURE)
    names = list(ref["label_names"])
    scores, labels = ref["scores"].astype(np.float64), ref["labels"]
    m = jet_metrics(scores, labels, names)
    for c, name in enumerate(names[1:], start=1):
        sel = (labels == c) | (labels == 0)
        disc = scores[sel, c] / (scores[sel, c] + scores[sel, 0])
        expected = weaver_bkg_rejection(labels[sel] == c, disc, REJECTION_WORKING_POINTS[name])
        assert m.rejection[name] == pytest.approx(expected), name


def test_absent_classes_and_background_are_said():
    labels = np.repeat([1, 2], 50)  # no QCD jets
    scores = np.eye(3)[labels] * 0.6 + 0.1
    m = jet_metrics(scores, labels, NAMES)
    assert m.rejection == {} and any("no label_QCD jets" in n for n in m.notes)
    assert any("AUCs over the 2 classes present" in n for n in m.notes) and "note:" in m.table()
    with pytest.raises(ValueError, match="one class"):
        jet_metrics(scores[:50], labels[:50], NAMES)


def test_prediction_reader_round_trip_and_errors(tmp_path):
    path = tmp_path / "pred.root"
    labels = np.array([0, 1, 2, 1])
    scores = np.eye(3)[labels] * 0.7 + 0.1
    with uproot.recreate(path) as f:
        f["Events"] = {**{f"score_{n}": scores[:, i] for i, n in enumerate(NAMES)},
                       **{n: (labels == i).astype(np.int32) for i, n in enumerate(NAMES)}}
    s, l, names = load_weaver_predictions([str(path)])
    assert sorted(names) == sorted(NAMES)  # file order; scores and labels follow the same order
    order = [names.index(n) for n in NAMES]
    assert (np.array(order)[labels] == l).all() and np.allclose(s[:, order], scores)
    with pytest.raises(PredictionFileError, match="no prediction file matches"):
        load_weaver_predictions([str(tmp_path / "nope_*.root")])
    bad = tmp_path / "bad.root"
    bad.write_text("garbage")
    with pytest.raises(PredictionFileError, match="bad.root: unreadable"):
        load_weaver_predictions([str(bad)])
    with uproot.recreate(tmp_path / "other.root") as f:
        f["tree"] = {"x": np.zeros(3)}
    with pytest.raises(PredictionFileError, match="no tree 'Events'"):
        load_weaver_predictions([str(tmp_path / "other.root")])


def test_atomic_write_replaces_whole_file_with_normal_permissions(tmp_path):
    import os
    import stat

    from partx.atomic import atomic_write

    target = tmp_path / "out.json"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
