"""Cost of the tracking encoders vs number of hits: FLOPs, throughput (hits/s), peak memory.

The seed paper's Figs. 3-4 (FLOPs and throughput vs hits, HEPT / Mamba-a / Mamba-b); the CLI is
analysis/tracking_cost.py, the docs docs/tracking_models.md ("Cost vs number of hits").

FLOPs (= 2 x multiply-accumulates, one event of N hits, forward only):
  * ``torch.utils.flop_counter.FlopCounterMode`` counts every matmul-like op: the Linear / Conv layers
    of all models, and HEPT's block-diagonal LSH attention (``partx.nn.lsh.lsh_block_attention``: two
    batched matmuls per OR table, ``q^ k^T`` and ``w v`` over (T, H, L/bs) blocks of bs x bs, L = N
    rounded up to a block multiple) -> ``2 T H L bs (C + D) + 2 T H L bs C`` per attention layer, linear in
    N at a fixed block size. The LSH projections ``q^ alpha`` are counted too (small); sorting, gathers,
    exp and softmax-like element-wise work are not (as for every FLOP counter).
  * The Mamba selective scan is a recurrence of element-wise multiply-adds, not a matmul: the counter
    sees none of it on the reference path and only the ``C . h`` einsum on the chunked CPU path (and
    masked matmuls on the SSD path). So the scans are run *outside* the counter (``scan_excluded``) and
    their FLOPs added analytically from the shapes of every scan call: ``SCAN_FLOPS_PER_ELEMENT`` (9)
    x B x L x D x N per scan, D = d_inner channels, N = d_state, L = the scanned length — mamba-ssm's
    own count for its selective-scan kernel (state-spaces/mamba, ``benchmarks`` / issue 110; Lampa
    reports FLOPs with it). A sequential recurrence does 6 (``partx.perf.flops.scan_flops_estimate``);
    ``scan_flops_per_element`` changes it. Mamba-2 (Mamba-a) scans use the same formula with
    D = heads x head_dim (its decay is one scalar per head, so this is an upper bound).
Throughput: hits / median forward latency (``partx.perf.timing.measure``, warm-up first).
Peak memory: ``partx.perf.memory.peak_memory_bytes`` (CUDA max_memory_allocated above the resident
weights and inputs; on CPU the profiler's allocator trace, not the process RSS).
"""

from __future__ import annotations

import contextlib
import glob as _glob
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils._python_dispatch import _disable_current_modes

from partx.cli import UserError
from partx.perf import memory as _memory
from partx.perf import timing as _timing
from partx.perf.flops import count_flops

#: CLI name -> partx.models.tracking model name
MODELS = {"HEPT": "hept", "Mamba": "mamba", "MambaA": "mamba_a", "MambaB": "mamba_b"}
SIZES = ("S", "M", "L")
DEFAULT_HITS = (3000, 6000, 10000, 15000, 20000, 60000)
#: mamba-ssm's FLOPs per (batch, step, channel, state) of its selective-scan kernel
SCAN_FLOPS_PER_ELEMENT = 9


class TrackingCostError(UserError):
    """A bad option or input of the tracking cost study (one line, exit 2)."""


# ---------------------------------------------------------------------------------------------- FLOPs


def mamba1_scan_flops(batch: int, length: int, d_inner: int, d_state: int, per_element: int = SCAN_FLOPS_PER_ELEMENT) -> int:
    """FLOPs of one Mamba-1 selective scan over (batch, length, d_inner channels, d_state states)."""
    return per_element * batch * length * d_inner * d_state


@dataclass
class ScanRecorder:
    """Collects the analytic FLOPs of every scan call made inside ``scan_excluded``."""

    per_element: int = SCAN_FLOPS_PER_ELEMENT
    calls: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    flops: int = 0


@contextlib.contextmanager
def scan_excluded(recorder: ScanRecorder):
    """Run every Mamba scan with all dispatch modes (FlopCounterMode) switched off, recording its analytic
    FLOPs in ``recorder``. Patches the names the Mamba blocks call (``partx.nn.mamba.block``) and the scans the
    fused bidirectional CPU path calls (``partx.nn.mamba.scan_chunked``, looked up at call time by
    ``partx.nn.mamba.fused``); a scan reached through another patched one is counted once."""
    from partx.nn.mamba import block as _block
    from partx.nn.mamba import scan_chunked as _chunked

    orig1, orig2 = _block.selective_scan, _block.ssd_scan
    orig_tm, orig_ssd = _chunked.selective_scan_time_major, _chunked.ssd_scan_chunked
    depth = [0]

    def counted(orig, kind, shape):
        def run(*a, **kw):
            if depth[0] == 0:
                b, length, d, n = shape(*a)
                recorder.calls.append((kind, (b, length, d, n)))
                recorder.flops += mamba1_scan_flops(b, length, d, n, recorder.per_element)
            depth[0] += 1
            try:
                with _disable_current_modes():
                    return orig(*a, **kw)
            finally:
                depth[0] -= 1
        return run

    # u (B, D, L), A (D, N) | x (B, L, H, P), B (B, L, G, N) | dlt (B, L, D), A (D, N)
    _block.selective_scan = counted(orig1, "mamba1", lambda u, delta, A, *r: (u.shape[0], u.shape[2], u.shape[1], A.shape[-1]))
    _block.ssd_scan = counted(orig2, "mamba2", lambda x, dt, A, B, *r: (x.shape[0], x.shape[1], x.shape[2] * x.shape[3], B.shape[-1]))
    _chunked.selective_scan_time_major = counted(orig_tm, "mamba1", lambda dlt, dxt, A, *r: (dlt.shape[0], dlt.shape[1], dlt.shape[2], A.shape[-1]))
    _chunked.ssd_scan_chunked = counted(orig_ssd, "mamba2", lambda x, dt, A, B, *r: (x.shape[0], x.shape[1], x.shape[2] * x.shape[3], B.shape[-1]))
    try:
        yield recorder
    finally:
        _block.selective_scan, _block.ssd_scan = orig1, orig2
        _chunked.selective_scan_time_major, _chunked.ssd_scan_chunked = orig_tm, orig_ssd


def count_tracking_flops(model: torch.nn.Module, args: tuple, scan_flops_per_element: int = SCAN_FLOPS_PER_ELEMENT) -> dict:
    """FLOPs of one forward ``model(*args)``: ``counted`` (FlopCounterMode, scans excluded), ``scan``
    (analytic), ``flops`` = their sum, ``scan_calls``.

    FLOPs are those of the function, not of an implementation: the bidirectional Mamba mixers are counted on
    their two-call path (the fused CPU path computes the same outputs, tests/test_mamba_fused.py, but runs its
    causal conv as element-wise taps the counter does not see)."""
    rec = ScanRecorder(per_element=scan_flops_per_element)
    mixers = [m for m in model.modules() if getattr(m, "fused", None) is True]
    for m in mixers:
        m.fused = False
    try:
        with scan_excluded(rec):
            counted = count_flops(model, args)
    finally:
        for m in mixers:
            m.fused = True
    return dict(counted=int(counted), scan=int(rec.flops), flops=int(counted + rec.flops), scan_calls=len(rec.calls))


# --------------------------------------------------------------------------------------------- inputs

#: pixel barrel radii (mm) and endcap |z| (mm): DESIGN.md "TrackML format"
_BARREL_R = (32.0, 72.0, 116.0, 172.0)
_ENDCAP_Z = (600.0, 700.0, 820.0, 960.0, 1100.0, 1300.0, 1500.0)


def random_hits(n: int, in_dim: int = 15, coords_dim: int = 6, seed: int = 0, device="cpu") -> tuple[torch.Tensor, ...]:
    """One synthetic event of ``n`` pixel hits in HEPT's scaled layout: x (1, n, in_dim), coords (1, n, coords_dim),
    mask (1, n) all True.

    Hits lie on the pixel barrel layers (|z| < 491 mm) or endcap disks (r 30-176 mm), |eta| < 4, uniform phi;
    coords = (eta, phi, r/1000, phi/pi, z/1000, eta_rz) as data/TrackML/*.yaml; x = (r/1000, phi/pi, z/1000,
    eta_rz, 1000 x/r^2, 1000 y/r^2) then unit-scale noise for the cluster-shape features and layer/10.
    Only the coordinate ranges matter for the cost (they set the LSH buckets and eta-phi regions)."""
    g = np.random.default_rng(seed)
    barrel = g.random(n) < 0.6
    z = np.where(barrel, g.uniform(-491.0, 491.0, n), g.choice(_ENDCAP_Z, n) * g.choice([-1.0, 1.0], n))
    r_min = np.maximum(30.0, np.abs(z) / math.sinh(4.0))  # endcap hits within |eta| < 4
    r = np.where(barrel, g.choice(_BARREL_R, n), r_min + g.random(n) * (176.0 - r_min))
    phi = g.uniform(-math.pi, math.pi, n)
    eta = np.arcsinh(z / r)
    layer = np.where(barrel, np.searchsorted(_BARREL_R, r), 4 + g.integers(0, 7, n))
    cols = [r / 1000, phi / math.pi, z / 1000, eta, 1000 * np.cos(phi) / r, 1000 * np.sin(phi) / r]
    coords = np.stack([eta, phi, *cols[:4]], -1)[:, :coords_dim]
    feats = np.concatenate([np.stack(cols, -1), g.normal(0, 1, (n, max(in_dim - 7, 0))), layer[:, None] / 10], -1)[:, :in_dim]
    if feats.shape[1] < in_dim:  # tiny in_dim / coords_dim overrides: pad with noise
        feats = np.concatenate([feats, g.normal(0, 1, (n, in_dim - feats.shape[1]))], -1)
    to = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)[None]  # noqa: E731
    return to(feats), to(coords), torch.ones(1, n, dtype=torch.bool, device=device)


class FileHits:
    """Real hits from preprocessed TrackML ROOT files (data/TrackML/*.yaml branch names).

    Rows (events or sectors) are read in file order and their hits concatenated until there are ``n``,
    so an N larger than one row joins several rows into one cloud (stated in the report)."""

    def __init__(self, pattern: str, data_config: str, max_hits: int):
        import uproot
        import yaml

        files = sorted(_glob.glob(pattern))
        if not files:
            raise TrackingCostError(f"--data {pattern!r} matches no file")
        try:
            with open(data_config) as f:
                cfg = yaml.safe_load(f)
            self.point_vars = [v[0] for v in cfg["inputs"]["hit_points"]["vars"]]
            self.feature_vars = [v[0] for v in cfg["inputs"]["hit_features"]["vars"]]
        except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
            raise TrackingCostError(f"--data-config {data_config}: not a TrackML data config ({type(e).__name__}: {e})") from None
        names = list(dict.fromkeys(self.point_vars + self.feature_vars))
        chunks: dict[str, list[np.ndarray]] = {k: [] for k in names}
        total = 0
        for path in files:
            try:
                tree = uproot.open(path)[cfg.get("treename", "Events")]
                arrs = tree.arrays(names, library="np")
            except Exception as e:  # uproot raises many types for corrupt / foreign files
                raise TrackingCostError(f"--data {path}: cannot read the TrackML branches ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
            for i in range(len(arrs[names[0]])):
                for k in names:
                    chunks[k].append(np.asarray(arrs[k][i], dtype=np.float32))
                total += len(arrs[names[0]][i])
                if total >= max_hits:
                    break
            if total >= max_hits:
                break
        self.cols = {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in chunks.items()}
        self.available = total
        self.files = files

    def hits(self, n: int, device="cpu") -> tuple[torch.Tensor, ...]:
        """The first ``n`` hits: x (1, n, C), coords (1, n, D), mask (1, n)."""
        if n > self.available:
            raise TrackingCostError(f"--data holds {self.available} hits in all, fewer than N = {n}")
        to = lambda ks: torch.as_tensor(np.stack([self.cols[k][:n] for k in ks], -1), device=device)[None]  # noqa: E731
        return to(self.feature_vars), to(self.point_vars), torch.ones(1, n, dtype=torch.bool, device=device)


# ---------------------------------------------------------------------------------------------- study


@dataclass
class CostConfig:
    models: list[str]
    sizes: list[str]
    hits: list[int]
    device: str = "cpu"
    threads: int | None = None
    max_seconds: float = 60.0  # skip a configuration whose single forward takes (or would take) longer
    time_budget: float = 5.0  # seconds timed per configuration at most
    min_run_time: float = 0.2
    warmup: int = 1
    measure_memory: bool = True
    scan_flops_per_element: int = SCAN_FLOPS_PER_ELEMENT
    seed: int = 0
    data: str | None = None
    data_config: str = "data/TrackML/TrackML_full.yaml"
    checkpoints: list[str] = field(default_factory=list)  # models/ cards (tracking family): trained networks


def checkpoint_encoders(names: list[str]) -> list[tuple[str, str, torch.nn.Module]]:
    """(model, size, trained TrackingEncoder) of each ``models/`` card named; TrackingCostError for a card
    of another family (CardError, also one line, for a missing or mismatched card)."""
    from partx.models_store import load
    from partx.models_store.families import family

    out = []
    for name in names:
        model, card = load(name)
        if family(card) != "tracking" or card.get("model") not in MODELS:
            raise TrackingCostError(f"--checkpoint {name} is a {family(card)} checkpoint ({card.get('model')}), not a tracking one "
                                    f"({', '.join(MODELS)})")
        out.append((str(card.get("model")), str(card.options.get("size", "S")), model.encoder))
    return out


def validate(cfg: CostConfig) -> None:
    """Raise TrackingCostError for any bad option, before any work."""
    if not cfg.checkpoints:  # else the cards give model and size (checked when they are loaded)
        bad = [m for m in cfg.models if m not in MODELS]
        if bad or not cfg.models:
            raise TrackingCostError(f"unknown model(s) {', '.join(bad) or '(none)'}; choose from {', '.join(MODELS)}")
        bad = [s for s in cfg.sizes if s not in SIZES]
        if bad or not cfg.sizes:
            raise TrackingCostError(f"unknown size(s) {', '.join(bad) or '(none)'}; choose from {', '.join(SIZES)}")
    if not cfg.hits or any(n <= 0 for n in cfg.hits):
        raise TrackingCostError(f"--hits must be positive integers, got {cfg.hits}")
    if cfg.max_seconds <= 0 or cfg.time_budget <= 0 or cfg.min_run_time < 0 or cfg.warmup < 0:
        raise TrackingCostError("--max-seconds and --time-budget must be > 0, --min-run-time and --warmup >= 0")
    if cfg.scan_flops_per_element <= 0:
        raise TrackingCostError(f"--scan-flops must be > 0, got {cfg.scan_flops_per_element}")
    if cfg.threads is not None and cfg.threads < 1:
        raise TrackingCostError(f"--threads must be >= 1, got {cfg.threads}")
    cfg.device = resolve_device(cfg.device)


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' without CUDA is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu" or name == "cuda" or name.startswith("cuda:"):
        if name != "cpu" and not torch.cuda.is_available():
            raise TrackingCostError(f"--device {name} requested but CUDA is not available (use auto or cpu)")
        return name
    raise TrackingCostError(f"unknown device {name!r}; use auto, cpu or cuda")


def run_cost(cfg: CostConfig, progress: bool = True, log=print) -> list[dict]:
    """One row per (model, size, N): params, flops (counted + scan), latency, throughput, peak memory, status."""
    import tqdm

    from partx.models.tracking import build_tracking_model, count_parameters

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    source = FileHits(cfg.data, cfg.data_config, max(cfg.hits)) if cfg.data else None
    in_dim = len(source.feature_vars) if source else 15
    coords_dim = len(source.point_vars) if source else 6
    hits = sorted(cfg.hits)
    rows: list[dict] = []
    if cfg.checkpoints:  # trained networks from models/ (their cards give model and size)
        jobs = checkpoint_encoders(cfg.checkpoints)
        cfg.models, cfg.sizes = list(dict.fromkeys(j[0] for j in jobs)), list(dict.fromkeys(j[1] for j in jobs))
    else:
        jobs = [(m, s, None) for s in cfg.sizes for m in cfg.models]
    bar = tqdm.tqdm(total=len(jobs) * len(hits), desc="tracking cost", disable=not progress, leave=False)
    for name, size, trained in jobs:
        torch.manual_seed(cfg.seed)
        model = trained if trained is not None else build_tracking_model(MODELS[name], size, in_dim=in_dim, coords_dim=coords_dim)
        model = model.to(device).eval()
        params = count_parameters(model)
        last: tuple[int, float] | None = None  # (N, seconds of one forward) of the last measured N
        for n in hits:
            bar.set_postfix_str(f"{name}-{size} N={n}")
            row = dict(model=name, size=size, N=n, params=params, device=cfg.device)
            rows.append(row)
            if last is not None and last[1] * n / last[0] > cfg.max_seconds:
                row["status"] = f"skipped: one forward ~{last[1] * n / last[0]:.0f} s expected (> --max-seconds {cfg.max_seconds:g})"
                bar.update(1)
                continue
            args = source.hits(n, device) if source else random_hits(n, in_dim, coords_dim, seed=cfg.seed, device=device)
            try:
                row.update(_measure_one(model, args, cfg, device, n))
            except torch.OutOfMemoryError as e:
                row["status"] = f"out of memory: {str(e).splitlines()[0][:100]}"
            if row.get("first_forward_s") is not None:
                last = (n, row["first_forward_s"])
            bar.update(1)
            if row.get("status") == "ok":  # a running log, also without the bar
                bar.write(_row_line(row), file=sys.stderr)
        del model
    bar.close()
    add_ratios(rows)
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure_one(model, args, cfg: CostConfig, device, n: int) -> dict:
    def fn():
        with torch.no_grad():
            return model(*args)

    out: dict = {}
    _sync(device)
    t0 = time.perf_counter()
    fn()  # first forward: lazy init, and the --max-seconds test
    _sync(device)
    first = time.perf_counter() - t0
    out["first_forward_s"] = first
    if first > cfg.max_seconds:
        out["status"] = f"skipped: one forward took {first:.0f} s (> --max-seconds {cfg.max_seconds:g})"
        return out
    f = count_tracking_flops(model, args, cfg.scan_flops_per_element)
    out.update(flops=f["flops"], flops_counted=f["counted"], flops_scan=f["scan"])
    out["flops_per_hit"] = f["flops"] / n
    # a slow forward is timed once or twice, never longer than the budget allows
    lat = _timing.measure(fn, warmup=max(cfg.warmup - 1, 0), min_run_time=min(cfg.min_run_time, cfg.time_budget),
                          max_run_time=cfg.time_budget, threads=cfg.threads)
    out.update(latency_ms=lat.median_s * 1e3, latency_iqr_ms=lat.iqr_s * 1e3, repeats=lat.repeats * lat.calls_per_repeat)
    out["throughput"] = n / lat.median_s
    if cfg.measure_memory:
        out["peak_mem_mb"] = _memory.peak_memory_bytes(fn, device=device) / 2**20
    out["status"] = "ok"
    return out


def _row_line(r: dict) -> str:
    mem = f", {r['peak_mem_mb']:.0f} MB" if r.get("peak_mem_mb") is not None else ""
    return (f"{r['model']}-{r['size']} N={r['N']}: {r['flops'] / 1e9:.3g} GFLOP, {r['latency_ms']:.4g} ms, "
            f"{r['throughput']:.4g} hits/s{mem}")


def add_ratios(rows: list[dict], baseline: str = "HEPT") -> None:
    """Ratios to HEPT of the same size and N, measured in the same run: ``flops_vs_hept`` = HEPT FLOPs /
    model FLOPs ("x fewer"), ``throughput_vs_hept`` = model / HEPT, ``mem_vs_hept`` = model / HEPT."""
    ref = {(r["size"], r["N"]): r for r in rows if r["model"] == baseline and r.get("status") == "ok"}
    for r in rows:
        b = ref.get((r["size"], r["N"]))
        if b is None or r.get("status") != "ok":
            continue
        r["flops_vs_hept"] = b["flops"] / r["flops"] if r["flops"] else float("nan")
        r["throughput_vs_hept"] = r["throughput"] / b["throughput"]
        if r.get("peak_mem_mb") and b.get("peak_mem_mb"):
            r["mem_vs_hept"] = r["peak_mem_mb"] / b["peak_mem_mb"]


def loglog_slope(rows: list[dict], model: str, size: str, key: str) -> float | None:
    """Least-squares slope of log(key) vs log(N) over the measured rows of one model and size."""
    pts = [(math.log(r["N"]), math.log(r[key])) for r in rows
           if r["model"] == model and r["size"] == size and r.get("status") == "ok" and r.get(key, 0) > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


#: the seed paper's claim (ANCHORS.md): Mamba-b-S vs HEPT at 60k hits on an A100
PAPER_CLAIM = dict(model="MambaB", size="S", N=60000, flops_vs_hept=11.26, throughput_vs_hept=1.96)


def paper_check(rows: list[dict]) -> str:
    """One sentence comparing Mamba-b-S / HEPT-S at the largest N measured for both with the paper's claim
    (>= 11x fewer FLOPs, >= 2x throughput at 60k hits)."""
    ok = [r for r in rows if r["model"] == "MambaB" and r.get("status") == "ok" and "flops_vs_hept" in r]
    if not ok:
        return "Paper check: not possible (Mamba-b and HEPT were not both measured at a common N and size)."
    sizes = [s for s in ("S", "M", "L") if any(r["size"] == s for r in ok)]
    r = max((r for r in ok if r["size"] == sizes[0]), key=lambda r: r["N"])
    f, t = r["flops_vs_hept"], r["throughput_vs_hept"]
    return (f"Paper check (Mamba-b-{r['size']} vs HEPT-{r['size']} at N = {r['N']}, {r['device']}): "
            f"{f:.2f}x fewer FLOPs (paper: 11.26x, target >= 11x: {'met' if f >= 11 else 'NOT met'}), "
            f"{t:.2f}x the throughput (paper: 1.96x on an A100, target >= 2x: {'met' if t >= 2 else 'NOT met'}).")
