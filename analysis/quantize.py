#!/usr/bin/env python
"""fp32 vs quantized / low-rank jet taggers on the same test jets: accuracy, AUC, rejection, speed, size.

    python analysis/quantize.py ParT-demo run/net_best_epoch_state.pt 'datasets/gen/Pythia/test_20M/*.root' \
        --calib-data 'datasets/gen/Pythia/val_5M/*.root' --methods dynamic,static,onnx,onnx-int8 \
        --lowrank run/lowrank.pt --out output/quantize
    python analysis/quantize.py --checkpoint models/ParT_gen-small_full 'datasets/gen/Pythia/test_20M/*.root'

With ``--checkpoint`` (a model card of models/, by path or name) the network, options, weights and data config
come from the card and every positional argument is a data file.

Every method is evaluated on the same jets (paired: accuracy difference with its paired standard error,
predictions that flip, max/mean logit difference) and timed in the same run on one batch of those jets
(torch.utils.benchmark median; ratios vs fp32); size = serialized state_dict (torch) or .onnx file.
The models are built for inference (softmax output, no sequence trimming: every method sees the same
padded length). Writes OUT/quantize.md, OUT/quantize.json and OUT/quantize.png (paths printed).
Bad inputs: one ERROR line, exit 2.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partx.cli import ArgumentParser, UserError, csv_list, positive_int, run_main, writable_dir  # noqa: E402

DEFAULT_METHODS = "dynamic,static,onnx,onnx-int8,onnx-int8-dynamic,torchao"


def build_parser() -> ArgumentParser:
    from partx import registry
    from partx.quant import METHODS

    p = ArgumentParser(prog="quantize.py", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="[MODEL CHECKPOINT] DATA",
                   help=f"MODEL: registered name ({', '.join(registry.names('jetclass'))}) or network file; CHECKPOINT: "
                        "its fp32 state_dict (weaver's *_best_epoch_state.pt); DATA: test ROOT/parquet files (globs "
                        "allowed). With --checkpoint, DATA only")
    p.add_argument("--checkpoint", dest="card", default=None,
                   help="a model card (models/<name> or its name): network, options, weights and data config from it")
    p.add_argument("--methods", type=csv_list, default=csv_list(DEFAULT_METHODS), help=f"from {', '.join(METHODS)}")
    p.add_argument("--lowrank", default=None, help="compressed checkpoint from `python -m partx.compress` (adds a row)")
    p.add_argument("--calib-data", nargs="+", default=None, help="calibration files (default: the first test jets)")
    p.add_argument("--calib-jets", type=positive_int, default=1024)
    p.add_argument("--data-config", default=None, help="default: the card's, else data/JetClass/JetClass_full.yaml")
    p.add_argument("-o", "--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="get_model override (as weaver -o; repeatable)")
    p.add_argument("--max-jets", type=positive_int, default=None, help="evaluate the first jets only")
    p.add_argument("--batch-size", type=positive_int, default=256, help="evaluation batch")
    p.add_argument("--bench-batch", type=positive_int, default=64, help="jets per timed call")
    p.add_argument("--threads", type=positive_int, default=None, help="torch / ORT intra-op threads")
    p.add_argument("--max-seconds", type=float, default=5.0, help="timed seconds per method at most")
    p.add_argument("--out", default="output/quantize", help="output directory")
    return p


def _resolve_inputs(args) -> None:
    """Split the positionals into model / checkpoint / data; a card (--checkpoint) supplies the first two and
    the data config."""
    from partx.models_store.loader import cli_card, data_config_path

    card = cli_card(args.card, {"-o": args.model_option, "--data-config": args.data_config})
    if card is not None:
        args.model, args.checkpoint, args.data = str(card.path), None, list(args.inputs)
        args.data_config = str(data_config_path(card))
        return
    if len(args.inputs) < 3:
        raise UserError("give MODEL CHECKPOINT DATA... (or --checkpoint models/<name> DATA...)")
    args.model, args.checkpoint, args.data = args.inputs[0], args.inputs[1], list(args.inputs[2:])
    args.data_config = args.data_config or "data/JetClass/JetClass_full.yaml"


def _check(args) -> None:
    import glob
    import os

    from partx.quant import METHODS

    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        raise UserError(f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS)}")
    for path, what in (*(((args.checkpoint, "checkpoint"),) if args.checkpoint else ()), (args.data_config, "data config"),
                       *(((args.lowrank, "--lowrank checkpoint"),) if args.lowrank else ())):
        if not os.path.isfile(path):
            raise UserError(f"{what} not found: {path}")
    for pats, what in ((args.data, "DATA"), (args.calib_data or [], "--calib-data")):
        missing = [p for p in pats if not glob.glob(p)]
        if missing:
            raise UserError(f"{what}: no file matches {' '.join(missing)}")
    if args.max_seconds <= 0:
        raise UserError(f"--max-seconds must be > 0, got {args.max_seconds}")


def _build(args):
    """(spec, data config, fp32 inference model, whether its ONNX graph may have a dynamic length)."""
    from partx.perf import models
    from partx.perf.harness import BenchmarkError, load_data_config, preflight

    try:
        overrides = models.parse_overrides(args.model_option)
        spec = models.resolve_model(args.model, args.checkpoint, overrides)
        dc = load_data_config(args.data_config)
        n = dc.input_shapes[dc.input_names[0]][-1]
        preflight([spec], [n], dc)  # unreadable / mismatched checkpoint -> one line
    except (ValueError, FileNotFoundError, BenchmarkError) as e:
        raise UserError(str(e)) from None
    # torch rows: the model as weaver evaluates it (padding trimmed, U only for real pairs) + softmax; ONNX rows:
    # the for_inference build weaver exports (softmax in the graph; ORT trims the padding outside it)
    model = models.build_model(spec, dc, n)
    export_model = models.build_model(dataclasses.replace(spec, overrides=dict(spec.overrides, for_inference=True)), dc, n)
    return spec, dc, model, export_model, models.onnx_dynamic_length(export_model)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    _resolve_inputs(args)
    _check(args)
    out = writable_dir(args.out)

    import numpy as np
    import torch

    from partx.metrics.jets import jet_metrics
    from partx.perf import models, timing
    from partx.perf.harness import machine_info
    from partx.preflight import PreflightError, check_files
    from partx.quant import QuantUnavailable, model_size_bytes, quantize
    from partx.quant.evaluate import batches, binomial_se, load_jets, paired, predict

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        check_files(args.data_config, list(args.data) + list(args.calib_data or []), test_only=True)
    except PreflightError as e:
        raise UserError(f"data: {e}") from None
    spec, dc, raw_model, export_model, dynamic_length = _build(args)
    model = models.Probabilities(raw_model)
    compressed = None
    if args.lowrank:
        from partx.compress import CompressError, load_compressed

        try:
            compressed = load_compressed(args.lowrank, raw_model)
        except CompressError as e:
            raise UserError(str(e)) from None
    try:
        jets = load_jets(args.data_config, args.data, args.max_jets)
        calib_jets = load_jets(args.data_config, args.calib_data, args.calib_jets) if args.calib_data else jets
    except (FileNotFoundError, ValueError) as e:
        raise UserError(f"data: {e}") from None
    calib = list(batches(calib_jets, min(args.bench_batch, args.calib_jets), limit=max(1, args.calib_jets // args.bench_batch)))
    bench_args = jets.args(0, args.bench_batch)
    print(f"{len(jets)} test jets, {sum(len(b[0]) for b in calib)} calibration jets"
          f"{'' if args.calib_data else ' (the first test jets: give --calib-data for held-out ones)'}", flush=True)

    variants = {"fp32": (model, dict(method="fp32", quantized=[], kept_float=[], size_bytes=model_size_bytes(model), notes=[]))}
    if compressed is not None:
        variants["lowrank"] = (models.Probabilities(compressed.model), dict(method="lowrank", quantized=[], kept_float=[],
                                                      size_bytes=model_size_bytes(compressed.model),
                                                      notes=[compressed.summary()]))
    skipped = {}
    for method in args.methods:
        try:
            res = quantize(export_model if method.startswith("onnx") else model, method, calib,
                           input_names=list(dc.input_names), dynamic_length=dynamic_length)
        except QuantUnavailable as e:
            skipped[method] = str(e)
            print(f"{method}: skipped ({e})", flush=True)
            continue
        variants[method] = (res.model, res.report.__dict__)
        print(res.report.summary(), flush=True)

    rows, ref = [], None
    for name, (m, report) in variants.items():
        probs = predict(m, jets, args.batch_size, progress=name)
        met = jet_metrics(probs, jets.labels, jets.label_names)
        ref = probs if ref is None else ref

        def fn(m=m):
            with torch.no_grad():
                return m(*bench_args)

        lat = timing.measure(fn, warmup=2, min_run_time=0.5, max_run_time=args.max_seconds)
        row = dict(method=name, n_jets=met.n_jets, accuracy=met.accuracy, accuracy_se=binomial_se(met.accuracy, met.n_jets),
                   auc=met.auc, rejection=met.rejection, **paired(ref, probs, jets.labels),
                   latency_ms=lat.median_s * 1e3, latency_iqr_ms=lat.iqr_s * 1e3,
                   throughput=args.bench_batch / lat.median_s, size_bytes=report["size_bytes"],
                   layers_int8=len(report["quantized"]), report=report)
        rows.append(row)
        print(f"{name}: acc {row['accuracy']:.4f} (diff {row['acc_diff']:+.4f} ± {row['acc_diff_se']:.4f}, "
              f"{row['flips']} flips), {row['latency_ms']:.1f} ms", flush=True)
    base = rows[0]
    onnx = next((r for r in rows if r["method"] == "onnx"), None)
    for r in rows:
        r["speedup"] = base["latency_ms"] / r["latency_ms"]
        r["size_ratio"] = r["size_bytes"] / base["size_bytes"]
        if onnx is not None and r["method"].startswith("onnx"):  # ORT int8 vs ORT fp32: the deployment comparison
            r["speedup_vs_onnx"] = onnx["latency_ms"] / r["latency_ms"]
            r["size_ratio_vs_onnx"] = r["size_bytes"] / onnx["size_bytes"]
    command = "python analysis/quantize.py " + " ".join(shlex.quote(a) for a in argv)
    result = dict(command=command, model=spec.name, checkpoint=str(args.checkpoint or args.card), bench_batch=args.bench_batch,
                  machine=machine_info("cpu", args.threads), rows=rows, skipped=skipped)
    from partx.quant.report import write_outputs

    for path in write_outputs(result, out):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
