"""``python -m partx.datagen pileup ...``: parser and entry function.

  python -m partx.datagen pileup --out DIR --events N [--mu 200] [--seed S] [--workers W]
         [--events-per-file K] [--overwrite] [--quiet]

Registered in ``partx.datagen.__main__.COMMANDS``. Bad options end in one line and exit 2 before any
event is generated (partx.cli).
"""

from __future__ import annotations

import time

from partx.cli import UserError, non_negative_int, positive_int, writable_dir
from partx.datagen.trackml.cli import _non_negative_float


def run_pileup(args) -> int:
    import importlib.util

    from partx.datagen.pileup.generate import Settings, generate, summary_line

    if importlib.util.find_spec("pythia8mc") is None:
        raise UserError("the pileup generator needs Pythia 8 (pythia8mc): pip install -e '.[gen]' -c constraints.txt")
    writable_dir(args.out)
    settings = Settings(seed=args.seed, mu=args.mu, events=args.events, events_per_file=args.events_per_file)
    t0 = time.perf_counter()
    stats = generate(args.out, settings, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    if stats:
        print(f"{args.out}: " + summary_line(stats, time.perf_counter() - t0))
    else:
        print(f"all {args.events} events already under {args.out}")
    return 0


def add_pileup(sub) -> None:
    from partx.datagen.pileup.generate import DEFAULT_EVENTS_PER_FILE

    t = sub.add_parser("pileup", help="generate pileup-mitigation events (Pythia tt̄ + Poisson(μ) minimum bias, "
                                      "Delphes-like PF candidates, Delphes-style ROOT)")
    t.add_argument("--out", required=True, help="output directory (pileup_part{1,2}_NNNNN.root)")
    t.add_argument("--events", type=positive_int, required=True, help="number of events (>= 1)")
    t.add_argument("--mu", type=_non_negative_float, default=200.0,
                   help="mean number of minimum-bias collisions per event (Poisson; default 200, 0 = none)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="random seed (>= 0; default 0)")
    t.add_argument("--workers", type=positive_int, default=1, help="parallel processes over files (default 1)")
    t.add_argument("--events-per-file", type=positive_int, default=DEFAULT_EVENTS_PER_FILE,
                   help=f"events per ROOT file (default {DEFAULT_EVENTS_PER_FILE})")
    t.add_argument("--overwrite", action="store_true",
                   help="OUT was generated with other parameters: delete its files and regenerate")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_pileup)
