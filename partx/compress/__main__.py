"""``python -m partx.compress MODEL CHECKPOINT --train GLOB --out FILE``: learn per-layer ranks, materialise, save.

Prints the per-layer ranks and parameter counts; ``analysis/quantize.py MODEL CHECKPOINT DATA --lowrank FILE``
then measures accuracy, speed and size beside fp32. Bad inputs: one ERROR line, exit 2.
"""

from __future__ import annotations

import logging
import os
import sys

from partx.cli import ArgumentParser, UserError, positive_int, run_main, writable_file


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m partx.compress", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="registered JetClass model name or network file")
    p.add_argument("checkpoint", help="trained fp32 state_dict")
    p.add_argument("--train", nargs="+", required=True, help="training files (globs)")
    p.add_argument("--val", nargs="+", default=None, help="validation files (globs): accuracy per epoch")
    p.add_argument("--out", required=True, help="compressed checkpoint to write")
    p.add_argument("--data-config", default="data/JetClass/JetClass_full.yaml")
    p.add_argument("-o", "--model-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--epochs", type=float, default=2.0, help="passes with the rank penalty (default 2)")
    p.add_argument("--recover-epochs", type=float, default=1.0, help="passes after materialising (default 1; 0: none)")
    p.add_argument("--penalty", type=float, default=1.0, help="weight of the soft parameter fraction (default 1)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threshold-lr", type=float, default=0.2, help="Adam lr of the per-layer thresholds (default 0.2)")
    p.add_argument("--temperature", type=float, default=0.02, help="gate width / largest singular value")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--max-train-jets", type=positive_int, default=None)
    p.add_argument("--max-val-jets", type=positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    return p


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    for v, what in ((args.epochs, "--epochs"), (args.penalty, "--penalty"), (args.recover_epochs, "--recover-epochs")):
        if not v >= 0:
            raise UserError(f"{what} must be >= 0, got {v}")
    if not (args.temperature > 0 and args.lr > 0 and args.threshold_lr > 0):
        raise UserError("--temperature, --lr and --threshold-lr must be > 0")
    for path, what in ((args.checkpoint, "checkpoint"), (args.data_config, "data config")):
        if not os.path.isfile(path):
            raise UserError(f"{what} not found: {path}")
    out = writable_file(args.out, "--out")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    from partx.compress import load_compressed, materialise, save_compressed, to_svd
    from partx.compress.finetune import finetune
    from partx.perf import models
    from partx.perf.harness import BenchmarkError, load_data_config, preflight
    from partx.quant.evaluate import load_jets

    torch.manual_seed(args.seed)
    try:
        overrides = models.parse_overrides(args.model_option)
        spec = models.resolve_model(args.model, args.checkpoint, overrides)
        dc = load_data_config(args.data_config)
        n = dc.input_shapes[dc.input_names[0]][-1]
        preflight([spec], [n], dc)
        train = load_jets(args.data_config, args.train, args.max_train_jets)
        val = load_jets(args.data_config, args.val, args.max_val_jets) if args.val else None
    except (ValueError, FileNotFoundError, BenchmarkError) as e:
        raise UserError(str(e)) from None
    model = models.build_model(spec, dc, n)
    names = to_svd(model, temperature=args.temperature)
    print(f"{len(names)} Linear layers SVD-parameterised; {len(train)} training jets", flush=True)
    hist = finetune(model, train, val, args.epochs, args.lr, args.threshold_lr, args.penalty, args.batch_size, args.seed)
    layers = materialise(model)
    rec = finetune(model, train, val, args.recover_epochs, args.lr, penalty=0.0, batch_size=args.batch_size,
                   seed=args.seed + 1) if args.recover_epochs > 0 else []
    meta = dict(model=spec.name, checkpoint=str(args.checkpoint), options=overrides, argv=list(argv or sys.argv[1:]),
                history=hist, recovery=rec)
    save_compressed(out, model, layers, meta)
    # check it loads into a fresh inference model before reporting success
    fresh = models.build_model(models.resolve_model(args.model, args.checkpoint, dict(overrides, for_inference=True)), dc, n)
    comp = load_compressed(out, fresh)
    print(f"{'layer':<36} {'kept/full':>9} {'params':>17}")
    for name, v in layers.items():
        print(f"{name:<36} {v['kept_directions']:>4}/{v['full_rank']:<4} {v['params_before']:>8} -> {v['params_after']:<8}"
              f"{' (dense: no gain)' if v['dense'] else ''}")
    total_before = sum(p.numel() for p in fresh.parameters())
    total_after = sum(p.numel() for p in comp.model.parameters())
    print(comp.summary())
    print(f"model parameters {total_before} -> {total_after} ({total_after / total_before:.2f}x)")
    if rec:
        print(f"validation accuracy after recovery: {rec[-1].get('val_accuracy', float('nan')):.4f}")
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
