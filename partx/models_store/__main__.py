"""``python -m partx.models_store {list,fetch,build}`` (docs/models.md).

  list                     the cards in models/, their family, whether their weights are present, their test metrics
  fetch [NAME ...]         download + verify the official ParT / ParticleNet JetClass weights (exit 1 on failure)
  official-cards           rewrite models/official/*.yaml (the official checkpoints' cards)
  evaluate NAME --data G   score a tracking / pileup checkpoint on files (its family's metrics, as JSON)
  build [NAME ...]         what `make models` runs: generate data, train, evaluate, write checkpoints + cards
"""

from __future__ import annotations

import sys
from pathlib import Path

from partx.cli import ArgumentParser, UserError, positive_int, run_main


def _list(args) -> int:
    from partx.models_store.card import read_card
    from partx.models_store.families import family, headline
    from partx.models_store.loader import available, models_dir

    names = available()
    if not names:
        print(f"no model cards in {models_dir()}")
    for name in names:
        card = read_card(models_dir() / f"{name}.yaml")
        have = "weights present" if card.weights_path.is_file() else (
            "weights missing: python get_datasets.py models" if card.official else "weights missing: make models")
        print(f"{name:<28} {family(card):<8} {card.network:<36} {headline(card):<34} {have}")
    return 0


def _fetch(args) -> int:
    from partx.download.errors import DownloadError
    from partx.models_store.loader import models_dir
    from partx.models_store.official import fetch

    try:
        paths = fetch(args.names or None, Path(args.models or models_dir()), base_url=args.mirror, force=args.force,
                      progress=not args.no_progress)
    except DownloadError as err:
        print(f"ERROR: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0


def _official_cards(args) -> int:
    from partx.models_store.card import write_card
    from partx.models_store.loader import models_dir
    from partx.models_store.official import OFFICIAL, card_data

    for name in OFFICIAL:
        print(write_card(Path(args.models or models_dir()) / "official" / f"{name}.yaml", card_data(name),
                         made_by="python -m partx.models_store official-cards"))
    return 0


def _build(args) -> int:
    from partx.models_store.build import build_all
    from partx.models_store.loader import models_dir
    from partx.models_store.recipes_tracking import RECIPES as TRACKING

    models = Path(args.models or models_dir())
    tracking = [n for n in args.names if n in TRACKING]
    jets = [n for n in args.names if n not in TRACKING]
    if args.from_run and (jets or len(tracking) != 1):
        raise UserError("--from-run adopts one finished tracking run: name exactly one tracking checkpoint")
    if jets or not tracking:
        build_all(jets or None, Path(args.datadir).resolve(), Path(args.checkdir).resolve(), Path(args.runs).resolve(),
                  models, force=args.force, workers=args.workers)
    if tracking:
        from partx.models_store.build_tracking import build_tracking

        build_tracking(tracking, Path(args.trackml_dir).resolve(), Path(args.trackml_test).resolve(),
                       Path(args.trackml_check).resolve(), Path(args.runs).resolve(), models, force=args.force,
                       from_run=Path(args.from_run).resolve() if args.from_run else None)
    return 0


def _evaluate(args) -> int:
    import json

    from partx.models_store.families import family, scorer
    from partx.models_store.loader import data_config_path, load
    from partx.perf.harness import load_data_config

    model, card = load(args.name)
    if family(card) == "jets":
        raise UserError(f"{args.name} is a jets card: score it with analysis/evaluate_jets.py --checkpoint {args.name}")
    dc = load_data_config(str(data_config_path(card)))
    kw = {"batch_size": args.batch_size} if args.batch_size else {}
    metrics = scorer(card).evaluate(model, dc, args.data, max_rows=args.max_rows, **kw)
    print(json.dumps(dict(card=card.name, family=family(card), data=args.data, **metrics), indent=1))
    return 0


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m partx.models_store", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="cards, weights present, accuracy").set_defaults(func=_list)
    f = sub.add_parser("fetch", help="download and verify the official JetClass checkpoints")
    f.add_argument("names", nargs="*", help="ParT_kin ParT_kinpid ParT_full ParticleNet_kin ... (default: all)")
    f.add_argument("--mirror", default=None, help="base URL serving the .pt files (default: the ParT repository)")
    f.add_argument("--force", action="store_true", help="download again even if verified")
    f.add_argument("--no-progress", action="store_true")
    f.add_argument("--models", default=None, help="models folder (default: models/ or $PARTX_MODELS)")
    f.set_defaults(func=_fetch)
    o = sub.add_parser("official-cards", help="(re)write models/official/*.yaml from partx.models_store.official")
    o.add_argument("--models", default=None)
    o.set_defaults(func=_official_cards)
    e = sub.add_parser("evaluate", help="score a tracking / pileup checkpoint on files (its family's metrics, JSON)")
    e.add_argument("name", help="card name or path, e.g. HEPT-S_gen-mu40_3k")
    e.add_argument("--data", required=True, help="glob of files in the card's data config format")
    e.add_argument("--max-rows", type=positive_int, default=None, help="only the first N rows (sectors / events)")
    e.add_argument("--batch-size", type=positive_int, default=None, help="rows per forward (default: the family's)")
    e.set_defaults(func=_evaluate)
    b = sub.add_parser("build", help="train the recipes of partx.models_store.recipes (make models)")
    b.add_argument("names", nargs="*", help="checkpoint names (default: the default JetClass recipes; tracking ones by name)")
    b.add_argument("--datadir", default="datasets/JetClass", help="generated training data (default datasets/JetClass)")
    b.add_argument("--checkdir", default="datasets/models_check", help="the check subset (default datasets/models_check)")
    b.add_argument("--runs", default="training/models", help="weaver run folders (default training/models)")
    b.add_argument("--models", default=None, help="models folder (default: models/ or $PARTX_MODELS)")
    b.add_argument("--force", action="store_true", help="rebuild checkpoints whose card exists")
    b.add_argument("--workers", type=positive_int, default=2, help="data generation processes")
    b.add_argument("--trackml-dir", default="datasets/TrackML_mu40", help="tracking training data (default datasets/TrackML_mu40)")
    b.add_argument("--trackml-test", default="datasets/models_test_trackml", help="tracking test events, regenerated alone")
    b.add_argument("--trackml-check", default="datasets/models_check_trackml", help="tracking check event")
    b.add_argument("--from-run", default=None, help="adopt this finished analysis/tracking_compare.py run (tracking only)")
    b.set_defaults(func=_build)
    return p


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
