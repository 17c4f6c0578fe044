#!/usr/bin/env python3
r"""Attention maps of a trained ParT: heat maps, eta-phi links, binary-attention statistics, U vs QK^T.

    python analysis/attention_maps.py --network networks/example_ParticleTransformer.py \
        --data-config data/JetClass/JetClass_kin.yaml --checkpoint training/.../net_best_epoch_state.pt \
        --data '/data/JetClass/Pythia/test_20M/*.root' [--jets 200] [--classes QCD,Hbb,Tbqq] [--out attention_maps] \
        [-o num_layers 4 -o embed_dims '[64,256,64]' ...]

    python analysis/attention_maps.py --checkpoint models/ParT_gen-small_full --data '/data/JetClass/Pythia/test_20M/*.root'

--checkpoint also takes a model card of models/ (its path or name): network, options and data config come from
the card, so --network, --data-config and -o are then not given. --network also takes a registered model name (ParT-demo: its network file and options). ``-o key value`` are the model options the checkpoint was trained with (as given to weaver). --jets is per
class. Writes to --out (atomically: all files or none): heat maps per layer and head and class-token maps for
example jets, eta-phi plots with the strongest links (inside / between exclusive-kT subjets), binary-attention
statistics per layer, head and class, attention vs DeltaR and partner type, U-removed vs QK^T-removed, and
summary.json with every number; each path is printed. Linformer / Reformer ParTs get their attention-like maps
(labelled); models without attention (Mamba) end with one "not applicable" line. Bad input: one ERROR line, exit 2.
"""

from __future__ import annotations

import ast
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_parser():
    from partx.cli import ArgumentParser, csv_list, positive_int

    p = ArgumentParser(prog="attention_maps.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default=None,
                   help="weaver network file the checkpoint was trained with, or a registered model name "
                        "(ParT, ParT-demo, ...: its network file and options, as train_JetClass.sh used them); "
                        "required unless --checkpoint is a model card")
    p.add_argument("--data-config", default=None, help="weaver data config (YAML) of the training (from the card "
                                                         "with --checkpoint models/<name>)")
    p.add_argument("--checkpoint", default=None, help="weaver checkpoint (net_best_epoch_state.pt), or a model card "
                                                      "(models/<name> or its name); none: untrained")
    p.add_argument("--data", required=True, action="append", help="ROOT file glob (repeatable; quote it)")
    p.add_argument("--jets", type=positive_int, default=200, help="jets per class (default 200)")
    p.add_argument("--classes", type=csv_list, default=None, help="comma-separated, e.g. QCD,Hbb,Tbqq (default: all)")
    p.add_argument("--out", default="attention_maps", help="output folder (default attention_maps)")
    p.add_argument("--subjets", default="2", help="exclusive-kT subjets per jet: a number >= 2, or 'auto' (prongs per class)")
    p.add_argument("--example-jets", type=positive_int, default=1, help="jets per class drawn (first 4 classes)")
    p.add_argument("--top-links", type=positive_int, default=15, help="links drawn per layer in the eta-phi plots")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("-o", "--model-option", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="model option as weaver's -o (value literal_eval-ed)")
    return p


def _options(pairs) -> dict:
    out = {}
    for key, value in pairs:
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value  # weaver keeps a non-literal as a string
    return out


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    from partx.cli import UserError, readable_file

    if args.subjets != "auto" and not (args.subjets.isdigit() and int(args.subjets) >= 2):
        raise UserError(f"--subjets must be an integer >= 2 or 'auto', not {args.subjets!r}")
    from partx.models_store.loader import cli_card, data_config_path

    card = cli_card(args.checkpoint, {"--network": args.network, "--data-config": args.data_config,
                                      "-o": args.model_option})
    if card is None and not (args.network and args.data_config):
        raise UserError("give --network and --data-config (with a weaver checkpoint or none), "
                        "or --checkpoint models/<name> (a model card)")
    if card is not None:
        args.data_config = str(data_config_path(card))
    import torch

    from partx.atomic import atomic_dir
    from partx.interpret.jets import load_jets, resolve_classes
    from partx.interpret.record import find_part, record_attention
    from partx.interpret.study import StudyConfig, build_model, run_study
    from partx.perf.harness import load_data_config

    if args.threads:
        torch.set_num_threads(args.threads)
    readable_file(args.data_config, "data config")
    try:
        dc = load_data_config(args.data_config)
    except ValueError as err:
        raise UserError(str(err)) from None
    from partx import registry

    network, options = args.network, _options(args.model_option)
    if card is not None:
        from partx.models_store.loader import build as build_card

        model = build_card(card, dc)
        network, options = card.network, card.options
    elif network in registry.MODELS:  # the registered network file and its options; -o on top, as the launcher does
        entry = registry.get(network)
        network, options = str(entry.network_path), dict(entry.options, **options)
    if card is None:
        model = build_model(network, dc, args.checkpoint, options)
    with record_attention(model):  # a model without attention fails here, before any data is read
        find_part(model)
    classes = resolve_classes(args.classes, list(dc.label_value))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    command = "python analysis/attention_maps.py " + " ".join(shlex.quote(a) for a in argv)
    name = card.name if card is not None else (
        args.network if args.network in registry.MODELS else Path(network).stem.removeprefix("example_"))
    meta = dict(command=command, network=network, checkpoint=args.checkpoint, data=args.data, options=options, model=name)
    cfg = StudyConfig(subjets=args.subjets, example_jets=args.example_jets, top_links=args.top_links,
                      batch_size=args.batch_size)
    with atomic_dir(out) as stage:  # an unwritable --out fails here, before the work; nothing lands unless all is done
        jets = load_jets(dc, args.data, args.jets, classes)
        written = run_study(model, jets, dc, stage, cfg, meta)
    for path in written:
        print(out / path.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    from partx.cli import run_main

    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
