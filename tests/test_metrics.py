"""Jet metrics: exact values on constructed scores, and clear errors on bad input."""

import numpy as np
import pytest
import uproot

from partx.metrics.jets import jet_metrics, rejection_at
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
    assert m.accuracy == 1.0 and m.macro_auc == pytest.approx(1.0)
    assert m.rejection["label_Hbb"] == float("inf") and m.n_background == 300
    assert m.working_point == {"label_Hbb": 0.5, "label_Tbqq": 0.995}
    assert "no QCD jet passes" in m.table()
    noise = rng.dirichlet(np.ones(3), size=900)
    r = jet_metrics(noise, labels, NAMES)
    assert 0.25 < r.accuracy < 0.42 and 0.45 < r.macro_auc < 0.55
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
