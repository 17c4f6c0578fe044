"""``python -m partx.datagen trackml ...`` and ``trackml-summary``: parsers and entry functions.

  python -m partx.datagen trackml --out DIR --events N [--pileup MU] [--seed S] [--workers W]
         [--detectors FILE] [--noise-fraction F] [--first-event K] [--pt-min GEV] [--overwrite] [--quiet]
  python -m partx.datagen trackml-summary DIR [--plot PATH.png] [--max-events N]

Registered in ``partx.datagen.__main__.COMMANDS``. Bad options end in one line and exit 2 before any
event is generated (partx.cli).
"""

from __future__ import annotations

import argparse
import time

from partx.cli import UserError, non_negative_int, positive_int, writable_dir


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"{v} is not a fraction in [0, 1)")
    return v


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0.0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{v} is not a finite number >= 0")
    return v


def _positive_float(text: str) -> float:
    v = _non_negative_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} is not > 0")
    return v


def run_trackml(args) -> int:
    from partx.datagen.trackml.generate import Settings, generate
    from partx.datagen.trackml.io import read_detectors

    import importlib.util

    if importlib.util.find_spec("pythia8mc") is None:
        raise UserError("the TrackML generator needs Pythia 8 (pythia8mc): pip install -e '.[gen]' -c constraints.txt")
    if args.detectors is not None:
        read_detectors(args.detectors)  # a bad file is reported before anything is written
    writable_dir(args.out)
    settings = Settings(seed=args.seed, pileup=args.pileup, noise_fraction=args.noise_fraction, pt_min=args.pt_min)
    t0 = time.perf_counter()
    stats = generate(args.out, args.events, first_event=args.first_event, settings=settings,
                     detectors=args.detectors, workers=args.workers, overwrite=args.overwrite,
                     progress=not args.quiet)
    dt = time.perf_counter() - t0
    if stats:
        hits = sum(s.hits for s in stats) / len(stats)
        pix = sum(s.pixel_hits for s in stats) / len(stats)
        print(f"{len(stats)} events generated under {args.out} in {dt:.1f} s ({len(stats) / dt:.3f} events/s); "
              f"{hits:.0f} hits/event, {pix:.0f} pixel hits/event")
    else:
        print(f"all {args.events} events already under {args.out}")
    return 0


def run_summary(args) -> int:
    from pathlib import Path

    from partx.datagen.trackml.summary import plot_summary, summarise

    if args.plot:
        from partx.plotting import plot_file

        plot_file(args.plot)
    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir} is not a directory of TrackML events")
    s = summarise(args.dir, args.max_events)
    if not s.events:
        raise UserError(f"{args.dir} holds no complete TrackML event (event%09d-{{hits,particles,truth}}.csv)")
    print(s.table())
    if args.plot:
        print(f"plot written: {plot_summary(s, args.plot)}")
    return 0


def add_trackml(sub) -> None:
    t = sub.add_parser("trackml", help="generate TrackML-format events (Pythia tt̄ + pileup, toy silicon tracker)")
    t.add_argument("--out", required=True, help="output directory (event%%09d-*.csv, detectors.csv)")
    t.add_argument("--events", type=positive_int, required=True, help="number of events (>= 1)")
    t.add_argument("--pileup", type=_non_negative_float, default=200.0,
                   help="mean number of minimum-bias collisions per event (Poisson; default 200, 0 = none)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="random seed (>= 0; default 0)")
    t.add_argument("--workers", type=positive_int, default=1, help="parallel processes over events (default 1)")
    t.add_argument("--detectors", default=None, help="a TrackML detectors.csv to place hits on (default: toy detector)")
    t.add_argument("--noise-fraction", type=_fraction, default=0.0,
                   help="fraction of noise hits among all hits, in [0, 1) (default 0)")
    t.add_argument("--first-event", type=non_negative_int, default=1000, help="id of the first event (default 1000)")
    t.add_argument("--pt-min", type=_positive_float, default=0.1, help="drop particles below this pT in GeV (default 0.1)")
    t.add_argument("--overwrite", action="store_true",
                   help="OUT was generated with other parameters: delete its events and regenerate")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_trackml)


def add_summary(sub) -> None:
    s = sub.add_parser("trackml-summary", help="hits / pixel hits per event, hits per particle, reconstructable fraction")
    s.add_argument("dir", help="directory of TrackML events (ours or real)")
    s.add_argument("--plot", default=None, help="write hits-per-particle / hits-per-event plot (PNG)")
    s.add_argument("--max-events", type=positive_int, default=None, help="summarise the first N events only")
    s.set_defaults(func=run_summary)
