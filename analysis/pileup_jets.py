#!/usr/bin/env python
"""Pileup-mitigation metrics again from a finished test pass: weaver's predictions + the processed test files.

    python analysis/pileup_jets.py --pred RUN/predict_output/pred.parquet --data 'D/processed/test/*.root' --out DIR

Joins the per-particle LV probabilities (weaver's ``--predict-output`` parquet, one row per event, observer
``event_id``) with the kinematics of the same events (processed pileup files, partx.readers.pileup), then
writes what the test pass writes (partx.train.pileup.write_test_outputs): particle metrics with the PUPPI-like
baseline and event-bootstrap errors, the jet table (no mitigation, CHS, PUPPI-like, model) with its bootstrap
errors, ``DIR/pred.metrics.json`` and ``DIR/pred_jets.png``. Use it to re-score old predictions after the
metric definitions change, without running the model. Bad inputs: one ERROR line, exit 2.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partx.cli import ArgumentParser, UserError, run_main, writable_dir  # noqa: E402

KINEMATICS = ("eta", "phi", "px", "py", "pt", "e", "rapidity")


def load_events(pred: str, data: list[str]) -> list[dict]:
    """The events of ``pred`` with their kinematics from ``data`` (matched by event_id)."""
    import awkward as ak
    import numpy as np
    import uproot

    try:
        p = ak.from_parquet(pred)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one line
        raise UserError(f"cannot read predictions {pred}: {' '.join(str(err).split())[:160]}") from None
    missing = [f for f in ("scores", "event_id", "is_lv", "is_scored") if f not in p.fields]
    if missing:
        raise UserError(f"{pred} lacks {', '.join(missing)}: not a pileup prediction file of ./train_Pileup.sh")
    files = sorted(f for pat in data for f in glob.glob(pat))
    if not files:
        raise UserError(f"--data: no file matches {' '.join(data)}")
    rows = {}
    for f in files:
        a = uproot.open(f)["Events"].arrays([f"part_{k}" for k in (*KINEMATICS, "pid_class", "is_lv", "is_scored")] + ["event_id"], library="np")
        for i, eid in enumerate(a["event_id"]):
            rows[int(eid)] = {k: a[k][i] for k in a}
    events = []
    for j, eid in enumerate(np.asarray(p["event_id"]).astype(int)):
        if eid not in rows:
            raise UserError(f"event_id {eid} of {pred} is in none of the --data files")
        r = rows[eid]
        prob = np.asarray(p["scores"][j], dtype=np.float64)
        if len(prob) != len(r["part_pt"]) or not (np.asarray(p["is_lv"][j]) == (r["part_is_lv"] > 0.5)).all():
            raise UserError(f"event {eid}: the predictions do not match the particles of the --data files (other files or order)")
        ev = {k: r[f"part_{k}"].astype(np.float64) for k in KINEMATICS}
        ev.update(charged=r["part_pid_class"] == 0, pid_class=r["part_pid_class"], is_lv=r["part_is_lv"] > 0.5,
                  is_scored=r["part_is_scored"] > 0.5, prob=prob)
        events.append(ev)
    return events


def _main(argv: list[str] | None) -> int:
    p = ArgumentParser(prog="pileup_jets.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--pred", required=True, help="weaver's pileup predictions (pred.parquet)")
    p.add_argument("--data", nargs="+", required=True, help="processed pileup ROOT files of the same events (globs allowed)")
    p.add_argument("--out", required=True, help="output folder (pred.metrics.json, pred_jets.png)")
    args = p.parse_args(argv)
    out = writable_dir(args.out)
    events = load_events(args.pred, args.data)

    from partx.metrics.pileup import particle_metrics
    from partx.train.pileup import write_test_outputs

    metrics = particle_metrics(events)
    write_test_outputs(events, metrics, str(out / "pred.parquet"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
