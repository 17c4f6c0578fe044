"""TrackML-format toy generator: format, geometry, helix, cells, weights, reader errors, resume, CLI.

Events are tiny (tt̄ without pileup: ~2k hits) so the file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pythia8mc")

from partx.datagen.__main__ import main as datagen_main  # noqa: E402
from partx.datagen.trackml import schema  # noqa: E402
from partx.datagen.trackml.cells import make_cells  # noqa: E402
from partx.datagen.trackml.generate import GenerationMismatch, Settings, generate  # noqa: E402
from partx.datagen.trackml.geometry import Detector, build_modules, write_detectors  # noqa: E402
from partx.datagen.trackml.io import TrackMLFormatError, list_events, read_detectors, read_event  # noqa: E402
from partx.datagen.trackml.propagate import C_LIGHT, Particles, Propagator  # noqa: E402
from partx.datagen.trackml.weights import truth_weights  # noqa: E402
from partx.datagen.trackml.writer import write_event  # noqa: E402

TINY = Settings(seed=7, pileup=0.0, noise_fraction=0.05)


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trackml")
    stats = generate(out, 2, first_event=1000, settings=TINY, progress=False, log=lambda *_: None)
    assert len(stats) == 2
    return out


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.toy()


def _cli(args: list[str], capsys) -> tuple[int, str]:
    try:
        rc = datagen_main(args)
    except SystemExit as exc:  # argparse errors exit from inside the parser (partx.cli.ArgumentParser)
        rc = exc.code
    cap = capsys.readouterr()
    return rc, cap.err


# ------------------------------------------------------------------------------------------ format
def test_files_have_trackml_columns_and_dtypes(gen_dir):
    assert list_events(gen_dir) == [1000, 1001]
    for part, cols in schema.DTYPES.items():
        header = (gen_dir / f"event000001000-{part}.csv").read_text().split("\n", 1)[0]
        assert header.split(",") == list(cols), part
    ev = read_event(gen_dir, 1000)
    for part, cols in schema.DTYPES.items():
        assert dict(ev[part].dtypes) == cols, part
    header = (gen_dir / "detectors.csv").read_text().split("\n", 1)[0].split(",")
    assert header == list(schema.DETECTOR_DTYPES) and len(header) == 21
    h, t, p, c = ev["hits"], ev["truth"], ev["particles"], ev["cells"]
    assert len(h) > 500 and (h["hit_id"].to_numpy() == np.arange(1, len(h) + 1)).all()
    assert (t["hit_id"].to_numpy() == h["hit_id"].to_numpy()).all()
    assert set(c["hit_id"]) == set(h["hit_id"])  # every hit has cells
    # nhits of the particles file counts the truth hits; every non-noise hit's particle is listed
    counts = t.loc[t.particle_id != 0, "particle_id"].value_counts()
    assert (p.set_index("particle_id")["nhits"].reindex(counts.index) == counts).all()
    assert (p["q"].abs() == 1).all()
    noise = (t.particle_id == 0).mean()
    assert 0.03 < noise < 0.07  # --noise-fraction 0.05
    # TrackML particle_id bit layout: vertex_id in bits 52-63, 1 = the hard scatter
    assert ((p["particle_id"].to_numpy().astype(np.uint64) >> np.uint64(52)) == 1).all()


def test_round_trip_through_reader_and_writer(gen_dir, tmp_path):
    ev = read_event(gen_dir / "event000001001")  # prefix form
    write_event(tmp_path, 5, ev)
    write_event(tmp_path, 6, ev, gz=True)
    for k in (5, 6):
        back = read_event(tmp_path, k)
        for part in schema.PARTS:
            pd.testing.assert_frame_equal(back[part], ev[part])


def test_truth_weights_sum_to_one(gen_dir):
    for e in (1000, 1001):
        t = read_event(gen_dir, e, parts=("truth",))["truth"]
        assert abs(float(t["weight"].astype(np.float64).sum()) - 1.0) < 1e-4
        assert (t.loc[t.particle_id == 0, "weight"] == 0).all()


def test_truth_weight_definition():
    # one 5-hit particle (pT 2 GeV), one 3-hit particle (too short), two noise hits
    parts = pd.DataFrame({"particle_id": [11, 12], "vz": [0.0, 0.0], "px": [2.0, 5.0], "py": [0.0, 0.0]})
    pid = np.array([11, 11, 11, 11, 11, 12, 12, 12, 0, 0])
    tz = np.array([50.0, 10.0, 30.0, 40.0, 20.0, 1, 2, 3, 5, 6])
    w = truth_weights(pid, tz, parts)
    assert abs(w.sum() - 1) < 1e-12
    assert (w[5:] == 0).all()
    by_order = w[:5][np.argsort(tz[:5])]
    # TrackML's proposal 10, 8, 6, 5, 3, 3, 3, 5, 6 stretched over 5 hits: first hit heaviest, middle lightest
    assert by_order[0] == by_order.max() and by_order[2] == by_order.min() and by_order[4] > by_order[2]
    expect = np.interp(np.arange(5), np.arange(9) * 4 / 8, [10, 8, 6, 5, 3, 3, 3, 5, 6])
    np.testing.assert_allclose(by_order, expect / expect.sum())


def test_truth_weights_equal_the_official_library():
    """The official LAL/trackml-library weights on a partx event (tests/fixtures/make_trackml_weights_reference.py)."""
    ref = np.load(Path(__file__).parent / "fixtures" / "trackml_weights_reference.npz")
    parts = pd.DataFrame({k: ref[k] for k in ("particle_id", "vz", "px", "py")})
    w = truth_weights(ref["hit_particle"], ref["tz"], parts)
    assert (ref["weight"] > 0).sum() > 1000 and ((ref["hit_particle"] == 0) & (w == 0)).sum() > 50
    # rtol: the reference computes pT from the float32 columns in float32; ours in float64
    np.testing.assert_allclose(w, ref["weight"], rtol=1e-6, atol=1e-12)


# ------------------------------------------------------------------------------------------ geometry
def test_hits_lie_on_their_modules(gen_dir):
    mods = read_detectors(gen_dir / "detectors.csv")
    d = Detector(mods)
    key = pd.MultiIndex.from_frame(mods[["volume_id", "layer_id", "module_id"]])
    ev = read_event(gen_dir, 1000)
    truth = ev["truth"].assign(**ev["hits"][["volume_id", "layer_id", "module_id"]])
    for frame, cols in ((ev["hits"], ("x", "y", "z")), (truth, ("tx", "ty", "tz"))):
        idx = key.get_indexer(pd.MultiIndex.from_frame(frame[["volume_id", "layer_id", "module_id"]]))
        assert (idx >= 0).all(), "a hit names a module missing from detectors.csv"
        loc = d.to_local(idx, frame[list(cols)].to_numpy(np.float64))
        tol = 2e-3  # mm: float32 text of positions up to 3 m
        assert (np.abs(loc[:, 2]) < d.t[idx] / 2).all()
        assert (np.abs(loc[:, 2]) < tol).all()
        assert (np.abs(loc[:, 1]) <= d.hv[idx] + tol).all()
        assert (np.abs(loc[:, 0]) <= d.half_u(idx, loc[:, 1]) + tol).all()


def test_toy_detector_layout(det):
    m = build_modules()
    assert set(m.volume_id) == {7, 8, 9, 12, 13, 14, 16, 17, 18}
    radii = {L.layer: round(L.r) for L in det.layers if L.volume == 8}
    assert radii == {2: 32, 4: 72, 6: 116, 8: 172}
    assert sorted(round(L.z) for L in det.layers if L.volume == 9) == [600, 700, 820, 960, 1100, 1300, 1500]
    rot = det.rot
    np.testing.assert_allclose(np.einsum("nji,njk->nik", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)


def _single(pt, eta, phi, q, vz=0.0):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + 0.13957**2)
    return Particles(*(np.array([v], float) for v in (0.0, 0.0, vz, px, py, pz, q, e)))


@pytest.mark.parametrize("pt,eta,phi,q", [(10.0, 0.1, 0.3, 1), (1.0, -0.5, 2.0, -1), (0.5, 2.2, -1.0, 1)])
def test_single_particle_hits_follow_the_analytic_helix(det, pt, eta, phi, q):
    cr = Propagator(det, scattering=False).run(_single(pt, eta, phi, q, vz=5.0), np.random.default_rng(0))
    assert len(cr.module) >= 8
    # the circle of a charge q, momentum pT (GeV) in B = 2 T: radius R = pT / (0.3 B |q|) m, centre on the
    # side the Lorentz force q v × B points to
    R = pt / (C_LIGHT * 2.0)
    force = np.array([np.sin(phi), -np.cos(phi)]) * q  # direction of v × B (B along +z) times q
    centre = R * force
    xy = cr.pos[:, :2]
    np.testing.assert_allclose(np.hypot(*(xy - centre).T), R, rtol=1e-9)
    # z grows linearly with the turning angle: z = vz + R |Δα| pz / pT
    a0 = np.arctan2(-centre[1], -centre[0])
    a = np.arctan2(xy[:, 1] - centre[1], xy[:, 0] - centre[0])
    dalpha = np.abs(np.angle(np.exp(1j * (a - a0))))
    np.testing.assert_allclose(cr.pos[:, 2], 5.0 + R * dalpha * np.sinh(eta), atol=1e-6)
    # momentum direction at each hit is tangent to that circle
    radial = (xy - centre) / R
    np.testing.assert_allclose((cr.mom[:, :2] * radial).sum(1), 0, atol=1e-9)
    if eta == 0.1:  # central and stiff: one hit on each of the 10 barrel layers, in order
        o = np.argsort(cr.order)
        vl = [tuple(x) for x in det.ids[cr.module[o], :2]]
        vl = [v for i, v in enumerate(vl) if i == 0 or v != vl[i - 1]]  # a crossing of two overlapping modules
        assert vl == [(8, 2), (8, 4), (8, 6), (8, 8), (13, 2), (13, 4), (13, 6), (13, 8), (17, 2), (17, 4)]


def test_scattering_spreads_hits(det):
    n = 200
    p = Particles(*(np.full(n, v, float) for v in (0, 0, 0, 0.5, 0, 0.05, 1, np.sqrt(0.5**2 + 0.05**2 + 0.0195))))
    on = Propagator(det, scattering=True).run(p, np.random.default_rng(1))
    last = det.ids[on.module, 0] == 17
    assert np.std(np.arctan2(on.pos[last, 1], on.pos[last, 0])) > 1e-3  # identical tracks, spread by scattering


# ------------------------------------------------------------------------------------------ cells
def test_cells_contiguous_and_grow_with_angle(det):
    m = np.flatnonzero(det.ids[:, 0] == 8)[10]
    ang = np.radians([0.0, 20.0, 45.0, 65.0, 80.0])
    d = np.stack([np.sin(ang) * 0.8, np.sin(ang) * 0.6, np.cos(ang)], 1)
    loc = np.tile([0.013, -0.02, 0.0], (len(ang), 1))
    cells, meas = make_cells(det, np.full(len(ang), m), loc, d)
    counts = np.bincount(cells.hit, minlength=len(ang))
    assert counts[0] == 1 and (np.diff(counts) > 0).all(), counts
    for i in range(len(ang)):
        s = cells.hit == i
        assert _connected(cells.ch0[s], cells.ch1[s])
        np.testing.assert_allclose(cells.value[s].sum(), 0.388 * det.t[m] / np.cos(ang[i]), rtol=1e-9)
    assert np.abs(meas - loc[:, :2]).max() < 0.5  # centroid near the crossing


def _connected(c0: np.ndarray, c1: np.ndarray) -> bool:
    cells = set(zip(c0.tolist(), c1.tolist()))
    todo, seen = [next(iter(cells))], set()
    while todo:
        a, b = todo.pop()
        if (a, b) in seen:
            continue
        seen.add((a, b))
        todo += [(a + i, b + j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (a + i, b + j) in cells]
    return seen == cells


def test_generated_cells_are_contiguous(gen_dir):
    c = read_event(gen_dir, 1000, parts=("cells",))["cells"]
    for _, g in list(c.groupby("hit_id"))[:400]:
        assert _connected(g.ch0.to_numpy(), g.ch1.to_numpy())
    assert (c["value"] > 0).all()


# ------------------------------------------------------------------------------------------ errors
def test_reader_errors_name_file_and_column(gen_dir, tmp_path):
    h = read_event(gen_dir, 1000, parts=("hits",))["hits"]
    h.drop(columns=["layer_id"]).to_csv(tmp_path / "event000000001-hits.csv", index=False)
    with pytest.raises(TrackMLFormatError, match=r"event000000001-hits\.csv: missing column\(s\) layer_id"):
        read_event(tmp_path, 1, parts=("hits",))
    bad = h.astype({"x": object})
    bad.loc[3, "x"] = "abc"
    bad.to_csv(tmp_path / "event000000002-hits.csv", index=False)
    with pytest.raises(TrackMLFormatError, match=r"event000000002-hits\.csv: column x has non-numeric value 'abc'"):
        read_event(tmp_path, 2, parts=("hits",))
    (tmp_path / "event000000003-hits.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(TrackMLFormatError, match="event000000003-hits.csv.gz is not a readable CSV"):
        read_event(tmp_path, 3, parts=("hits",))
    with pytest.raises(TrackMLFormatError, match="event000000004-truth.csv"):
        read_event(tmp_path, 4, parts=("truth",))
    h.assign(module_id=h.module_id + 0.5).to_csv(tmp_path / "event000000005-hits.csv", index=False)
    with pytest.raises(TrackMLFormatError, match="column module_id must be integer"):
        read_event(tmp_path, 5, parts=("hits",))


def test_cli_bad_inputs_one_line_exit_2(gen_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for part in schema.PARTS:
        (bad / f"event000001000-{part}.csv").write_text((gen_dir / f"event000001000-{part}.csv").read_text())
    t = pd.read_csv(bad / "event000001000-truth.csv").drop(columns=["tz"])
    t.to_csv(bad / "event000001000-truth.csv", index=False)
    rc, err = _cli(["trackml-summary", str(bad)], capsys)
    assert rc == 2 and err.count("\n") == 1 and "truth.csv: missing column(s) tz" in err
    det_bad = tmp_path / "detectors.csv"
    pd.read_csv(gen_dir / "detectors.csv").drop(columns=["pitch_v"]).to_csv(det_bad, index=False)
    rc, err = _cli(["trackml", "--out", str(tmp_path / "o"), "--events", "1", "--detectors", str(det_bad)], capsys)
    assert rc == 2 and "missing column(s) pitch_v" in err and not (tmp_path / "o").exists()
    for args in (["--events", "0"], ["--events", "-2"], ["--events", "1", "--workers", "0"],
                 ["--events", "1", "--pileup", "-1"], ["--events", "1", "--noise-fraction", "1.5"],
                 ["--events", "1", "--pt-min", "0"]):
        rc, err = _cli(["trackml", "--out", str(tmp_path / "o"), *args], capsys)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("ERROR:"), (args, err)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ resume
def test_resume_skip_regenerate_and_refuse(gen_dir, tmp_path, capsys):
    out = tmp_path / "r"
    logs: list[str] = []
    generate(out, 1, first_event=1000, settings=TINY, progress=False, log=logs.append)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    # same content as the fixture's event 1000: an event depends on (seed, id) only
    assert first["event000001000-hits.csv"] == (gen_dir / "event000001000-hits.csv").read_bytes()
    mtime = (out / "event000001000-cells.csv").stat().st_mtime_ns
    assert generate(out, 1, first_event=1000, settings=TINY, progress=False, log=logs.append) == []
    assert "1 of 1 events already complete are kept" in logs[-1]
    assert (out / "event000001000-cells.csv").stat().st_mtime_ns == mtime
    (out / "event000001000-truth.csv").unlink()
    stats = generate(out, 1, first_event=1000, settings=TINY, progress=False, log=logs.append)
    assert [s.event_id for s in stats] == [1000] and "1 incomplete regenerated" in logs[-1]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    with pytest.raises(GenerationMismatch, match="seed=7 .now 8."):
        generate(out, 1, settings=Settings(seed=8, pileup=0.0, noise_fraction=0.05), progress=False)
    rc, err = _cli(["trackml", "--out", str(out), "--events", "1", "--pileup", "0", "--seed", "8",
                    "--noise-fraction", "0.05"], capsys)
    assert rc == 2 and "other parameters: seed=7 (now 8)" in err
    rc, _ = _cli(["trackml", "--out", str(out), "--events", "1", "--pileup", "0", "--seed", "8",
                  "--noise-fraction", "0.05", "--overwrite", "--quiet"], capsys)
    assert rc == 0 and (out / "event000001000-hits.csv").read_bytes() != first["event000001000-hits.csv"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_real_detectors_file_places_hits_on_its_modules(tmp_path):
    mods = build_modules()
    sub = mods[mods.volume_id.isin([8, 13])].copy()  # a "real" file with only two barrels
    write_detectors(sub, tmp_path / "real_detectors.csv")
    out = tmp_path / "o"
    generate(out, 1, settings=TINY, detectors=tmp_path / "real_detectors.csv", progress=False, log=lambda *_: None)
    h = read_event(out, 1000, parts=("hits",))["hits"]
    assert set(h.volume_id) == {8, 13}
    pd.testing.assert_frame_equal(read_detectors(out / "detectors.csv"), read_detectors(tmp_path / "real_detectors.csv"))


def test_workers_give_the_same_events(gen_dir, tmp_path):
    out = tmp_path / "w2"
    generate(out, 2, first_event=1000, settings=TINY, workers=2, progress=False, log=lambda *_: None)
    for e in (1000, 1001):
        for part in schema.PARTS:
            name = f"event{e:09d}-{part}.csv"
            assert (out / name).read_bytes() == (gen_dir / name).read_bytes(), name


def test_summary_and_plot(gen_dir, tmp_path, capsys):
    from partx.datagen.trackml.summary import summarise

    s = summarise(gen_dir)
    h = read_event(gen_dir, 1000, parts=("hits",))["hits"]
    assert s.events == [1000, 1001] and s.hits[0] == len(h)
    assert s.pixel_hits[0] == int(h.volume_id.isin([7, 8, 9]).sum()) and 0 < s.n_pt_reco <= s.n_pt
    rc, _ = _cli(["trackml-summary", str(gen_dir), "--plot", str(tmp_path / "s.png")], capsys)
    assert rc == 0 and (tmp_path / "s.png").stat().st_size > 0


def test_ctrl_c_leaves_no_partial_files(tmp_path, monkeypatch, capsys):
    from partx.datagen.trackml import writer

    calls = []
    real = writer._write_plain

    def interrupt_in_second_event(df, path, gz):
        calls.append(path)
        if len(calls) == 6:  # second event, second file: after a temporary file exists
            raise KeyboardInterrupt
        real(df, path, gz)

    monkeypatch.setattr(writer, "_write_plain", interrupt_in_second_event)
    rc, err = _cli(["trackml", "--out", str(tmp_path), "--events", "2", "--pileup", "0", "--seed", "7",
                    "--noise-fraction", "0.05", "--quiet"], capsys)
    assert rc == 130 and err.count("\n") == 1 and "interrupted" in err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.startswith(".")]
    assert [n for n in names if n.startswith("event")] == [f"event000001000-{p}.csv" for p in sorted(schema.PARTS)]
