"""The benchmark harness: (model, length N, batch, dtype) -> params, FLOPs, latency, throughput, memory.

Library entry point: ``run_benchmark(BenchConfig(...)) -> BenchResult``; ``analysis/benchmark.py`` is a
thin CLI over it and ``partx.perf.report`` writes the tables and plots. Ratios to a baseline model
measured in the same run, log-log slopes vs N and crossover lengths are computed here.

Per configuration (inference, ``torch.no_grad``, model in eval mode):
  * params: all parameters of the fp32 model.
  * FLOPs: ``partx.perf.flops.count_flops`` (FlopCounterMode under the MATH SDPA backend) on the first
    ``min(batch, flops_batch)`` jets of the batch, divided by that count -> FLOPs per sample; MACs =
    FLOPs / 2. Computed on the fp32 model and reused for int8 / bf16 rows (neither is counted properly by
    FlopCounterMode). ``scan_flops`` adds an analytic estimate for Mamba scans (not seen by the counter).
  * latency: median and IQR of ``torch.utils.benchmark``'s adaptive autorange after ``warmup`` untimed calls
    (``partx.perf.timing``: blocks timed until IQR / median < ``iqr_threshold`` after ``min_run_time`` s, or
    ``max_seconds`` s spent); throughput = batch / median latency.
  * peak memory: ``partx.perf.memory`` (CUDA max_allocated; CPU profiler allocator trace), one separate call.
  * dtypes: fp32; bf16 = ``torch.autocast`` (CPU or CUDA) around fp32 weights; int8 =
    ``partx.quant.quantize_int8`` (dynamic int8 Linear layers, CPU only); onnx / onnx-int8 = the model
    (built for inference, as weaver exports it) run by ONNX Runtime on CPU, fp32 / QDQ static int8 calibrated
    on the benchmark batch itself (``partx.quant.quantize``, methods ``onnx`` / ``onnx-int8``); a model that
    cannot be exported gets a row whose status says why.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from partx.cli import UserError
from partx.perf import flops as _flops
from partx.perf import inputs as _inputs
from partx.perf import memory as _memory
from partx.perf import models as _models
from partx.perf import timing as _timing

DTYPES = ("fp32", "bf16", "int8", "onnx", "onnx-int8")


class BenchmarkError(UserError, ValueError):
    """A bad benchmark argument, checkpoint or model: one line, exit 2 (``partx.cli.run_main``)."""


@dataclass
class BenchConfig:
    models: list[str]
    lengths: list[int] = field(default_factory=lambda: [128])
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    dtypes: list[str] = field(default_factory=lambda: ["fp32"])
    data_config: str = "data/JetClass/JetClass_full.yaml"
    device: str = "cpu"
    checkpoints: dict[str, str] = field(default_factory=dict)
    model_options: dict[str, dict] = field(default_factory=dict)  # model name -> get_model overrides
    data_files: str | None = None
    fill: str | float = "full"
    warmup: int = 1  # untimed calls before the Timer's own warm-up
    min_run_time: float = 0.2  # seconds timed per configuration before the IQR test may stop it
    threads: int | None = None
    baseline: str | None = "ParT"
    flops_batch: int | None = None  # jets for the FLOP count; None: 1 with fill='full' (batch-independent), else 8
    max_seconds: float = 10.0  # per configuration: the Timer stops after this many timed seconds
    iqr_threshold: float = 0.1  # stop once IQR / median of the timed blocks is below this
    measure_memory: bool = True
    seed: int = 0
    length_buckets: int | None = None  # jets per length-sorted sub-batch (partx.quant.length_buckets), every row


def validate(cfg: BenchConfig) -> list[_models.ModelSpec]:
    """Check every argument before anything runs; returns the resolved model specs. Raises BenchmarkError."""
    if not cfg.models:
        raise BenchmarkError("no models given")
    for n in cfg.lengths:
        if not isinstance(n, int) or n < 1:
            raise BenchmarkError(f"length N must be an integer >= 1, got {n!r}")
    for b in cfg.batch_sizes:
        if not isinstance(b, int) or b < 1:
            raise BenchmarkError(f"batch size must be an integer >= 1, got {b!r}")
    for d in cfg.dtypes:
        if d not in DTYPES:
            raise BenchmarkError(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    if cfg.warmup < 0 or cfg.min_run_time < 0 or cfg.max_seconds <= 0 or cfg.iqr_threshold <= 0:
        raise BenchmarkError(f"need --warmup >= 0, --min-run-time >= 0, --max-seconds > 0 and --iqr-threshold > 0, got "
                             f"{cfg.warmup}, {cfg.min_run_time}, {cfg.max_seconds}, {cfg.iqr_threshold}")
    if cfg.threads is not None and cfg.threads < 1:
        raise BenchmarkError(f"--threads must be >= 1, got {cfg.threads}")
    if cfg.length_buckets is not None and cfg.length_buckets < 1:
        raise BenchmarkError(f"--length-buckets must be >= 1 jet, got {cfg.length_buckets}")
    if cfg.flops_batch is not None and cfg.flops_batch < 1:
        raise BenchmarkError(f"--flops-batch must be >= 1 jet, got {cfg.flops_batch}")
    try:
        cfg.fill = _inputs.parse_fill(cfg.fill)
    except ValueError as e:
        raise BenchmarkError(str(e)) from None
    dev = torch.device(cfg.device) if cfg.device in ("cpu", "cuda") or cfg.device.startswith("cuda:") else None
    if dev is None:
        raise BenchmarkError(f"unknown device {cfg.device!r}; use cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda requested but CUDA is not available")
    if not os.path.isfile(cfg.data_config):
        raise BenchmarkError(f"data config not found: {cfg.data_config}")
    unknown_ck = set(cfg.checkpoints) - set(cfg.models)
    if unknown_ck:
        raise BenchmarkError(f"--checkpoint given for model(s) not benchmarked: {', '.join(sorted(unknown_ck))}")
    if cfg.baseline is not None and cfg.baseline not in cfg.models:
        raise BenchmarkError(f"baseline {cfg.baseline!r} is not among --models ({', '.join(cfg.models)})")
    specs = []
    for name in cfg.models:
        try:
            specs.append(_models.resolve_model(name, cfg.checkpoints.get(name), cfg.model_options.get(name)))
        except (ValueError, FileNotFoundError) as e:
            raise BenchmarkError(str(e)) from None
    if cfg.data_files is not None:
        import glob

        if not glob.glob(cfg.data_files):
            raise BenchmarkError(f"--data-files {cfg.data_files!r} matches no file")
        from partx.preflight import PreflightError, check_files

        try:  # every file opened, every branch the data config reads present (the training preflight)
            check_files(cfg.data_config, [cfg.data_files], test_only=True)
        except PreflightError as e:
            raise BenchmarkError(f"--data-files: {e}") from None
    return specs


def check_data_files(cfg: BenchConfig) -> None:
    """Read the ``--data-files`` jets the largest batch will use before anything is measured: a file weaver
    cannot read, or inputs that come out non-finite, raise BenchmarkError (a benchmark of garbage inputs is
    no result)."""
    try:
        batch = _inputs.file_inputs(cfg.data_config, cfg.data_files, min(cfg.lengths), max(cfg.batch_sizes))
    except Exception as e:  # noqa: BLE001 - weaver/uproot/awkward raise many types for an unusable file
        raise BenchmarkError(f"--data-files {cfg.data_files!r} cannot be read: {_one_line(e)}") from None
    bad = [name for name, x in batch.items() if not torch.isfinite(x).all()]
    if bad:
        raise BenchmarkError(f"--data-files {cfg.data_files!r}: non-finite (NaN/inf) values in input(s) "
                             f"{', '.join(bad)} after weaver's preprocessing")


def load_data_config(path: str):
    """weaver DataConfig without observers/reweighting; BenchmarkError if it cannot be read."""
    from weaver.utils.data.config import DataConfig

    try:
        return DataConfig.load(path, load_observers=False, load_reweight_info=False)
    except Exception as e:  # noqa: BLE001 — any parse/schema error is the user's file
        raise BenchmarkError(f"data config {path} cannot be read: {_one_line(e)}") from None


def preflight(specs: list[_models.ModelSpec], lengths: list[int], data_config) -> None:
    """Build every (model, N) once on CPU, checkpoints loaded, before anything is measured.

    A corrupt or mismatched checkpoint, or options / a length a model refuses, raise BenchmarkError naming
    it, so such a run stops before it measures or writes anything. What counts as the user's: any error
    reading the checkpoint; ValueError / TypeError / AssertionError / KeyError from ``get_model`` (bad or
    unknown options, a refused length); RuntimeError when a checkpoint is loaded (``load_state_dict``
    mismatch). Anything else is a bug and keeps its traceback.
    """
    for spec in specs:
        users = (ValueError, TypeError, AssertionError, KeyError) + ((RuntimeError,) if spec.checkpoint else ())
        if spec.checkpoint is not None:
            try:
                torch.load(spec.checkpoint, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001
                raise BenchmarkError(f"checkpoint {spec.checkpoint} for {spec.name!r} cannot be read as a "
                                     f"PyTorch state_dict: {_one_line(e, 120)}") from None
        for n in lengths:
            try:
                model = _models.build_model(spec, data_config, n)
            except users as e:
                what = (f"checkpoint {spec.checkpoint} does not load into {spec.name!r}" if spec.checkpoint is not None
                        else f"{spec.name!r} cannot be built")
                raise BenchmarkError(f"{what} at N={n}: {_one_line(e)}") from None
            del model


def _one_line(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}" + ("..." if len(text) > limit else "")


def machine_info(device: str = "cpu", threads: int | None = None) -> dict:
    info = dict(
        platform=platform.platform(), python=platform.python_version(), torch=torch.__version__,
        threads=threads or torch.get_num_threads(), cpu_count=os.cpu_count(), cpu_model=_cpu_model(),
        loadavg_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def _autocast(dtype: str, device: torch.device):
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class BenchResult:
    config: dict
    machine: dict
    rows: list[dict]
    scaling: list[dict]
    crossovers: list[dict]
    baseline: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def run_benchmark(cfg: BenchConfig, progress: bool = True, log=print) -> BenchResult:
    """Run every configuration; BenchmarkError before any measurement for bad arguments, checkpoints or
    builds (``validate``, ``preflight``); a failure while measuring one configuration is recorded in its row."""
    specs = validate(cfg)
    data_config = load_data_config(cfg.data_config)
    preflight(specs, cfg.lengths, data_config)
    if cfg.data_files:
        check_data_files(cfg)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    input_names = list(data_config.input_names)

    jobs = [(s, n) for s in specs for n in cfg.lengths]
    total = len(jobs) * len(cfg.dtypes) * len(cfg.batch_sizes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="benchmark", unit="cfg", dynamic_ncols=True)
    rows = []
    for spec, n in jobs:
        model = _models.build_model(spec, data_config, n, device=device)  # preflight built it already
        params = _models.count_params(model)
        variants = {}
        for dtype in cfg.dtypes:
            if dtype == "int8":
                if device.type != "cpu":
                    variants[dtype] = "int8 dynamic quantization runs on CPU only"
                    continue
                from partx.quant import quantize_int8

                variants[dtype] = quantize_int8(model)
            elif dtype.startswith("onnx"):
                variants[dtype] = _onnx_variant(cfg, spec, data_config, n, dtype, device)
            else:
                variants[dtype] = model
        flop_cache = None
        for b in cfg.batch_sizes:
            batch = _make_inputs(cfg, data_config, n, b, device)
            args = _inputs.as_forward_args(batch, input_names)
            same_per_sample = cfg.fill == "full" and not cfg.data_files
            if flop_cache is None or not same_per_sample:
                flop_cache = _count(model, args, cfg.flops_batch or (1 if same_per_sample else 8), n)
            flop_info = dict(flop_cache)
            for dtype in cfg.dtypes:
                if bar:
                    bar.set_postfix_str(f"{spec.name} N={n} B={b} {dtype}")
                m = variants[dtype]
                row = dict(model=spec.name, N=n, batch=b, dtype=dtype, params=params, **flop_info, status="ok")
                if hasattr(m, "trim_status"):  # ORT: whether inputs are cut to the real length (partx.quant OrtModel)
                    row["ort_trim"] = m.trim_status
                if isinstance(m, str):
                    row.update(status=f"skipped: {m}")
                    rows.append(row)
                    bar and bar.update(1)
                    continue
                try:
                    if cfg.length_buckets:
                        from partx.quant.length_buckets import LengthBuckets, mask_index

                        m = LengthBuckets(m, mask_index(input_names), cfg.length_buckets)
                    row.update(_measure(m, args, cfg, dtype, device, b))
                except Exception as e:  # noqa: BLE001
                    row["status"] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                rows.append(row)
                if bar:
                    bar.update(1)
                else:
                    log(_row_line(row))
            del batch, args
        del model, variants
    if bar:
        bar.close()
    add_ratios(rows, cfg.baseline)
    scaling = fit_scaling(rows)
    crossovers = find_crossovers(rows, cfg.baseline)
    config = asdict(cfg)
    machine = machine_info(cfg.device, cfg.threads)
    machine["loadavg_1m_before"] = load_before
    return BenchResult(config, machine, rows, scaling, crossovers, cfg.baseline)


def _onnx_variant(cfg: BenchConfig, spec, data_config, n: int, dtype: str, device):
    """ONNX Runtime model (CPU) for an onnx* dtype, or a string saying why there is none."""
    if device.type != "cpu":
        return "ONNX Runtime rows run on CPU only"
    import dataclasses

    from partx.quant import quantize

    try:
        inf = _models.build_model(dataclasses.replace(spec, overrides=dict(spec.overrides, for_inference=True)), data_config, n)
        calib = [_inputs.as_forward_args(_make_inputs(cfg, data_config, n, max(cfg.batch_sizes), "cpu"), data_config.input_names)]
        return quantize(inf, dtype, calib, input_names=list(data_config.input_names),
                        dynamic_length=_models.onnx_dynamic_length(inf)).model
    except Exception as e:  # noqa: BLE001 - an export failure is a result (the model is not exportable), not a crash
        return f"not exportable: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"


def _make_inputs(cfg: BenchConfig, data_config, n: int, b: int, device) -> dict:
    if cfg.data_files:
        return _inputs.file_inputs(cfg.data_config, cfg.data_files, n, b, device=device)
    return _inputs.synthetic_inputs(data_config, n, b, fill=cfg.fill, seed=cfg.seed, device=device)


def _count(model, args, flops_batch: int, n: int) -> dict:
    k = min(args[0].size(0), flops_batch)
    sub = tuple(a[:k] for a in args)
    try:
        total = _flops.count_flops(model, sub)
        note = ""
    except Exception as e:  # noqa: BLE001
        return dict(flops=float("nan"), macs=float("nan"), scan_flops=float("nan"), flops_note=f"{type(e).__name__}: {e}")
    scan = _flops.scan_flops_estimate(model, 1, n)
    return dict(flops=total / k, macs=total / k / 2, scan_flops=float(scan), flops_jets=k, flops_note=note)


def _measure(model, args, cfg: BenchConfig, dtype: str, device, b: int) -> dict:
    def fn():  # a fresh autocast context per call
        with torch.no_grad(), _autocast(dtype, device):
            return model(*args)

    stats = _timing.measure(fn, warmup=cfg.warmup, min_run_time=cfg.min_run_time, max_run_time=cfg.max_seconds,
                            threshold=cfg.iqr_threshold)
    out = dict(
        latency_ms=stats.median_s * 1e3, latency_iqr_ms=stats.iqr_s * 1e3, latency_q25_ms=stats.q25_s * 1e3,
        latency_q75_ms=stats.q75_s * 1e3, repeats=stats.repeats, calls_per_repeat=stats.calls_per_repeat,
        warmup=stats.warmup, throughput=b / stats.median_s,
    )
    if cfg.measure_memory and not dtype.startswith("onnx"):  # ORT's own allocator is invisible to torch's profiler
        out["peak_mem_mb"] = _memory.peak_memory_bytes(fn, device=device) / 2**20
    return out


def _row_line(r: dict) -> str:
    if r.get("status") != "ok":
        return f"{r['model']} N={r['N']} B={r['batch']} {r['dtype']}: {r['status']}"
    return (f"{r['model']} N={r['N']} B={r['batch']} {r['dtype']}: {r['latency_ms']:.2f} ms "
            f"({r['throughput']:.1f}/s), {r.get('macs', float('nan')) / 1e6:.1f} MMAC/sample")


RATIO_KEYS = {"latency_ms": "latency_ratio", "throughput": "throughput_ratio", "macs": "macs_ratio",
              "peak_mem_mb": "mem_ratio", "params": "params_ratio"}


def add_ratios(rows: list[dict], baseline: str | None) -> None:
    """Add ``<metric>_ratio`` = value / baseline value at the same (N, batch, dtype) to every row."""
    if baseline is None:
        return
    base = {(r["N"], r["batch"], r["dtype"]): r for r in rows if r["model"] == baseline and r.get("status") == "ok"}
    for r in rows:
        ref = base.get((r["N"], r["batch"], r["dtype"]))
        for key, rkey in RATIO_KEYS.items():
            v, b = r.get(key), (ref or {}).get(key)
            r[rkey] = (v / b) if (isinstance(v, (int, float)) and isinstance(b, (int, float)) and b and not math.isnan(b)) else None
    # int8 / bf16 speed-up vs the same model's fp32 row
    fp32 = {(r["model"], r["N"], r["batch"]): r for r in rows if r["dtype"] == "fp32" and r.get("status") == "ok"}
    for r in rows:
        ref = fp32.get((r["model"], r["N"], r["batch"]))
        if ref and r.get("status") == "ok" and r["dtype"] != "fp32":
            r["speedup_vs_fp32"] = ref["latency_ms"] / r["latency_ms"]


def loglog_fit(xs, ys) -> tuple[float, float] | None:
    """Least-squares fit log y = a + s log x; returns (s, a) or None with < 2 usable points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and y > 0 and not math.isnan(y)]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    X, Y = np.array(pts).T
    s, a = np.polyfit(X, Y, 1)
    return float(s), float(a)


def fit_scaling(rows: list[dict]) -> list[dict]:
    """Log-log slopes of latency, peak memory and FLOPs vs N per (model, batch, dtype) with >= 2 lengths."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("status") == "ok":
            groups.setdefault((r["model"], r["batch"], r["dtype"]), []).append(r)
    for (model, b, dtype), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["N"])
        if len({r["N"] for r in rs}) < 2:
            continue
        ns = [r["N"] for r in rs]
        entry = dict(model=model, batch=b, dtype=dtype, lengths=ns)
        for key, name in (("latency_ms", "latency"), ("peak_mem_mb", "memory"), ("macs", "macs")):
            fit = loglog_fit(ns, [r.get(key, float("nan")) for r in rs])
            entry[f"{name}_slope"] = fit[0] if fit else None
            entry[f"{name}_intercept"] = fit[1] if fit else None
        out.append(entry)
    return out


def find_crossovers(rows: list[dict], baseline: str | None) -> list[dict]:
    """Length N* above which each model's latency drops below the baseline's (same batch and dtype).

    ``fit``: intersection of the two log-log latency fits, reported only inside the measured N range.
    ``interp``: first sign change of log(latency ratio) between measured lengths, interpolated linearly in
    log N. Messages: "faster at all N" / "slower at all N" / "none in range" when there is no crossing.
    """
    if baseline is None:
        return []
    scaling = {(s["model"], s["batch"], s["dtype"]): s for s in fit_scaling(rows)}
    lat = {}
    for r in rows:
        if r.get("status") == "ok":
            lat.setdefault((r["model"], r["batch"], r["dtype"]), {})[r["N"]] = r["latency_ms"]
    out = []
    for (model, b, dtype), series in sorted(lat.items()):
        if model == baseline or (baseline, b, dtype) not in lat:
            continue
        base = lat[(baseline, b, dtype)]
        ns = sorted(set(series) & set(base))
        if len(ns) < 2:
            continue
        ratio = [math.log(series[n] / base[n]) for n in ns]  # < 0: model faster
        entry = dict(model=model, baseline=baseline, batch=b, dtype=dtype, lengths=ns,
                     latency_ratio_first=series[ns[0]] / base[ns[0]], latency_ratio_last=series[ns[-1]] / base[ns[-1]])
        # piecewise interpolation
        interp = None
        for (n0, r0), (n1, r1) in zip(zip(ns, ratio), zip(ns[1:], ratio[1:])):
            if r0 >= 0 > r1:
                x = math.log(n0) + (math.log(n1) - math.log(n0)) * r0 / (r0 - r1)
                interp = math.exp(x)
                break
        # fit intersection
        fit = None
        sm, sb = scaling.get((model, b, dtype)), scaling.get((baseline, b, dtype))
        if sm and sb and sm["latency_slope"] is not None and sb["latency_slope"] is not None and sm["latency_slope"] != sb["latency_slope"]:
            x = (sb["latency_intercept"] - sm["latency_intercept"]) / (sm["latency_slope"] - sb["latency_slope"])
            if sm["latency_slope"] < sb["latency_slope"] and math.log(ns[0]) <= x <= math.log(ns[-1]):
                fit = math.exp(x)
        if all(r < 0 for r in ratio):
            verdict = f"faster at all N in [{ns[0]}, {ns[-1]}]"
        elif fit is not None or interp is not None:
            verdict = f"faster above N ~ {fit if fit is not None else interp:.0f}"
        elif all(r >= 0 for r in ratio):
            verdict = f"none in range [{ns[0]}, {ns[-1]}] (slower at all N)"
        else:
            verdict = f"none in range [{ns[0]}, {ns[-1]}]"
        entry.update(crossover_fit=fit, crossover_interp=interp, verdict=verdict)
        out.append(entry)
    return out
