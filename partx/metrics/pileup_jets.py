"""Jet-level pileup-mitigation performance: jet pT response and resolution vs truth jet pT, per method.

Jets: fastjet anti-kT, R = 0.4, clustered from each particle's four-momentum (px, py, pz = E tanh(y), E)
scaled by a per-particle weight (particles of weight 0 are left out):

    truth     LV particles only (charged and neutral, label from the generator: IsPU == 0)
    none      every particle (no mitigation)
    chs       charged-hadron subtraction: charged pileup dropped, every neutral kept
    puppi     CHS for charged + the PUPPI-like weight for neutrals (partx.metrics.puppi)
    model     CHS for charged + neutrals weighted by the model's predicted LV probability

Charged particles use the vertex association (the generator's truth) in every mitigated method, as CMS's
CHS does with tracks; the methods differ only in what they do with neutrals. The model scores every
neutral, also those below the 0.9 GeV it is trained on (their probabilities are an extrapolation).

Matching and figures of merit: truth jets with pT > 20 GeV and |eta| < 2.5 (tracker acceptance, where CHS
applies); each is matched to the closest reco jet (pT > 5 GeV) within dR < 0.2 (a reco jet may serve two
truth jets; rare at R = 0.4). In bins of truth pT, over matched jets of ratio r = pT_reco / pT_truth:

    response     median of r                                           (1 = unbiased)
    resolution   (q84(r) - q16(r)) / 2 / median(r)     half the central 68% interval, relative to the response

Over all bins together ("overall", the "all" column) the response is the median of every r, and the
resolution is taken of r / response(its bin): pooling raw ratios would count the pT dependence of the response
as spread, and a method with a strongly pT-dependent response (CHS, PUPPI-like here) would look worse than its
bins are. That is the resolution after a jet energy calibration in truth-pT bins; the raw pooled value is kept
as ``resolution_uncalibrated``.
    efficiency   matched / truth jets

The ML4Jets 2024 slides quote "resolution and bias" of (reco - truth) / truth of the leading jet; the median
of r minus 1 is that bias, taken over all jets instead of the leading one. The statistics are quantiles
(robust to the few badly matched jets), not a Gaussian fit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import awkward as ak
import numpy as np

from partx.fastjet_banner import banner_silenced
from partx.metrics.puppi import puppi_weights

METHODS = ("none", "chs", "puppi", "model")
METHOD_LABELS = {"none": "no mitigation", "chs": "CHS", "puppi": "PUPPI-like", "model": "model (LV prob.)",
                 "truth_labels": "truth labels"}


@dataclass(frozen=True)
class JetSettings:
    R: float = 0.4
    truth_pt_min: float = 20.0
    eta_max: float = 2.5
    reco_pt_min: float = 5.0
    match_dr: float = 0.2
    pt_bins: tuple[float, ...] = (20.0, 30.0, 40.0, 60.0, 80.0, 120.0, 200.0, 500.0)


def four_momenta(ev: dict) -> np.ndarray:
    """(n, 4) px, py, pz, E of an event's particles; pz from the stored energy and rapidity (exact for both)."""
    e = np.asarray(ev["e"], np.float64)
    return np.stack([np.asarray(ev["px"], np.float64), np.asarray(ev["py"], np.float64),
                     e * np.tanh(np.asarray(ev["rapidity"], np.float64)), e], axis=1)


def cluster(p4: list[np.ndarray], weights: list[np.ndarray], settings: JetSettings = JetSettings(), pt_min: float = 0.0) -> list[np.ndarray]:
    """anti-kT jets of several events: per event an (n_jets, 3) array of (pT, eta, phi), pT-descending.

    Args:
        p4: per event (n, 4) px, py, pz, E; weights: per event (n,) scale factors (<= 0: left out).
    """
    import fastjet

    sel = [(p * w[:, None])[w > 0] for p, w in zip(p4, weights)]
    counts = [len(s) for s in sel]
    flat = np.concatenate(sel) if sel else np.zeros((0, 4))
    arr = ak.unflatten(ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}), counts)
    with banner_silenced():  # fastjet's banner would land in stdout, which lists written files
        cs = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, settings.R))
        jets = cs.inclusive_jets(min_pt=pt_min)
    out = []
    for j in jets:
        px, py, pz = (ak.to_numpy(j[k]).astype(np.float64) for k in ("px", "py", "pz"))
        pt = np.hypot(px, py)
        eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
        order = np.argsort(-pt, kind="stable")
        out.append(np.stack([pt, eta, np.arctan2(py, px)], axis=1)[order])
    return out


def method_weights(ev: dict, method: str) -> np.ndarray:
    """Per-particle weights of ``method`` for one event (see the module doc)."""
    charged, lv = np.asarray(ev["charged"], bool), np.asarray(ev["is_lv"], bool)
    if method == "none":
        return np.ones(len(charged))
    if method == "truth":
        return lv.astype(float)
    chs = np.where(charged, lv.astype(float), 1.0)
    if method == "chs":
        return chs
    if method == "puppi":
        return event_puppi_weights(ev)
    if method == "model":
        return np.where(charged, chs, np.clip(np.asarray(ev["prob"], np.float64), 0.0, 1.0))
    if method == "truth_labels":  # the perfect classifier: = truth
        return np.where(charged, chs, lv.astype(float))
    raise ValueError(f"unknown jet method {method!r}; choose one of {', '.join(METHODS)}, truth_labels")


def event_puppi_weights(ev: dict) -> np.ndarray:
    """The PUPPI-like weights of one event (partx.metrics.puppi), computed once and kept in ``ev["w_puppi"]``
    (the particle-level baseline metrics and the jets both read them)."""
    if "w_puppi" not in ev:
        ev["w_puppi"] = puppi_weights(ev["eta"], ev["phi"], ev["pt"], np.asarray(ev["charged"], bool), np.asarray(ev["is_lv"], bool))
    return ev["w_puppi"]


def resolution(r: np.ndarray) -> float:
    """(q84 - q16) / 2 / median of the finite ratios ``r`` (NaN when there are none or the median is <= 0)."""
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return float("nan")
    q16, med, q84 = np.quantile(r, [0.16, 0.5, 0.84])
    return float((q84 - q16) / 2 / med) if med > 0 else float("nan")


def bootstrap_resolution(ratios: dict[str, np.ndarray], reference: str = "model", n_boot: int = 300, seed: int = 0) -> dict:
    """Bootstrap standard errors of the overall resolution of each method, and of the paired difference
    ``reference - method`` (the same truth jets resampled for every method: the differences share their
    truth-jet fluctuations, so their SE is smaller than the two SEs combined).

    Args:
        ratios: method -> (n_truth,) pT_reco / pT_truth per truth jet (NaN = unmatched), same jets in the same order.
    Returns:
        ``{"n_boot", "resolution_se": {method: se}, "difference": {method: {"diff", "se"}}}`` (difference only when
        ``reference`` is one of the methods; negative = the reference resolves better).
    """
    rng = np.random.default_rng(seed)
    n = len(next(iter(ratios.values()))) if ratios else 0
    draws = {m: [] for m in ratios}
    for _ in range(n_boot if n else 0):
        idx = rng.integers(0, n, n)
        for m, r in ratios.items():
            draws[m].append(resolution(r[idx]))
    out = {"n_boot": n_boot, "resolution_se": {m: float(np.nanstd(v, ddof=1)) if len(v) > 1 else float("nan") for m, v in draws.items()},
           "difference": {}}
    if reference in ratios:
        ref = np.asarray(draws[reference])
        for m in ratios:
            if m != reference:
                d = ref - np.asarray(draws[m])
                out["difference"][m] = {"diff": resolution(ratios[reference]) - resolution(ratios[m]),
                                        "se": float(np.nanstd(d, ddof=1)) if len(d) > 1 else float("nan")}
    return out


def match(truth: np.ndarray, reco: np.ndarray, max_dr: float) -> np.ndarray:
    """For each truth jet (pT, eta, phi) the pT of the closest reco jet within ``max_dr`` (NaN if none)."""
    if len(truth) == 0 or len(reco) == 0:
        return np.full(len(truth), np.nan)
    dphi = np.mod(truth[:, None, 2] - reco[None, :, 2] + np.pi, 2 * np.pi) - np.pi
    dr = np.hypot(truth[:, None, 1] - reco[None, :, 1], dphi)
    best = dr.argmin(1)
    return np.where(dr[np.arange(len(truth)), best] < max_dr, reco[best, 0], np.nan)


@dataclass
class MethodResult:
    """Per truth-pT bin: jets, matched jets, efficiency, response (median r), resolution; and all bins together."""

    n_truth: list[int] = field(default_factory=list)
    n_matched: list[int] = field(default_factory=list)
    efficiency: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    overall: dict = field(default_factory=dict)


def _stats(r: np.ndarray, n_truth: int) -> dict:
    if len(r) == 0:
        return dict(n_truth=n_truth, n_matched=0, efficiency=float("nan") if n_truth == 0 else 0.0,
                    response=float("nan"), resolution=float("nan"))
    return dict(n_truth=n_truth, n_matched=int(len(r)), efficiency=len(r) / n_truth, response=float(np.median(r)),
                resolution=resolution(r))


def _calibrated(ratio: np.ndarray, t_pt: np.ndarray, bins: np.ndarray, response: list[float]) -> np.ndarray:
    """(n_truth,) ratio / the response of its truth-pT bin (NaN outside the bins, unmatched, or an empty bin)."""
    idx = np.digitize(t_pt, bins) - 1
    ok = (idx >= 0) & (idx < len(response))
    resp = np.full(len(ratio), np.nan)
    resp[ok] = np.asarray(response, dtype=float)[idx[ok]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return ratio / resp


def jet_performance(events: list[dict], methods: tuple[str, ...] = METHODS, settings: JetSettings = JetSettings()) -> dict:
    """Response / resolution / efficiency per method and truth-pT bin.

    Args:
        events: per event ``px, py, e, rapidity, eta, phi, pt`` (n,), ``charged`` and ``is_lv`` (n,) bool, and
            ``prob`` (n,) for the "model" method.
    Returns:
        JSON-ready dict: ``settings``, ``pt_bins``, ``n_truth_jets``, ``methods: {method: MethodResult as dict}``.
    """
    p4 = [four_momenta(ev) for ev in events]
    truth = cluster(p4, [method_weights(ev, "truth") for ev in events], settings, settings.truth_pt_min)
    truth = [t[np.abs(t[:, 1]) < settings.eta_max] for t in truth]
    t_pt = np.concatenate([t[:, 0] for t in truth]) if truth else np.zeros(0)
    bins = np.asarray(settings.pt_bins)
    out = {"settings": asdict(settings), "pt_bins": list(settings.pt_bins), "n_truth_jets": int(len(t_pt)), "methods": {}}
    in_range = (t_pt >= bins[0]) & (t_pt < bins[-1])
    ratios = {}
    for method in methods:
        reco = cluster(p4, [method_weights(ev, method) for ev in events], settings, settings.reco_pt_min)
        matched = np.concatenate([match(t, r, settings.match_dr) for t, r in zip(truth, reco)]) if truth else np.zeros(0)
        ratio = matched / np.where(t_pt > 0, t_pt, 1.0)
        res = MethodResult()
        for lo, hi in zip(bins[:-1], bins[1:]):
            in_bin = (t_pt >= lo) & (t_pt < hi)
            s = _stats(ratio[in_bin & np.isfinite(ratio)], int(in_bin.sum()))
            for k in ("n_truth", "n_matched", "efficiency", "response", "resolution"):
                getattr(res, k).append(s[k])
        res.overall = _stats(ratio[in_range & np.isfinite(ratio)], int(in_range.sum()))
        # the pooled spread of r mixes the pT dependence of the response into the resolution (a method whose
        # response falls from 1.8 to 1.1 looks wide even if every bin is sharp): the overall resolution is
        # taken after a per-bin response calibration, r / response(bin), as a jet energy correction would do
        calibrated = _calibrated(ratio, t_pt, bins, res.response)
        res.overall["resolution_uncalibrated"] = res.overall["resolution"]
        res.overall["resolution"] = resolution(calibrated[in_range])
        out["methods"][method] = asdict(res)
        ratios[method] = calibrated[in_range]
    out["bootstrap"] = bootstrap_resolution(ratios)
    return out


def format_table(perf: dict) -> str:
    """Text table: one row per method, response / resolution per truth-pT bin, and all bins together."""
    bins = perf["pt_bins"]
    heads = [f"{lo:g}-{hi:g}" for lo, hi in zip(bins[:-1], bins[1:])] + ["all"]
    lines = [f"jet pT response (median reco/truth) / resolution ((q84-q16)/2/median), anti-kT R={perf['settings']['R']}, "
             f"{perf['n_truth_jets']} truth jets; 'all': the resolution after a per-bin response calibration",
             f"{'truth pT [GeV]':<18}" + "".join(f"{h:>15}" for h in heads)]
    for method, r in perf["methods"].items():
        cells = [f"{a:.3f}/{b:.3f}" if np.isfinite(a) else "-" for a, b in zip(r["response"], r["resolution"])]
        o = r["overall"]
        cells.append(f"{o['response']:.3f}/{o['resolution']:.3f}" if np.isfinite(o["response"]) else "-")
        lines.append(f"{METHOD_LABELS.get(method, method):<18}" + "".join(f"{c:>15}" for c in cells))
    n = perf["methods"][next(iter(perf["methods"]))]["n_truth"] if perf["methods"] else []
    lines.append(f"{'truth jets':<18}" + "".join(f"{v:>15}" for v in n) + f"{perf['n_truth_jets']:>15}")
    boot = perf.get("bootstrap")
    if boot:
        se = ", ".join(f"{METHOD_LABELS.get(m, m)} {perf['methods'][m]['overall']['resolution']:.4f} ± {v:.4f}"
                       for m, v in boot["resolution_se"].items() if m in perf["methods"])
        lines.append(f"overall resolution (response-calibrated per bin) ± bootstrap SE ({boot['n_boot']} resamplings of the truth jets): {se}")
        for m, d in boot["difference"].items():
            lines.append(f"  model - {METHOD_LABELS.get(m, m)}: {d['diff']:+.4f} ± {d['se']:.4f} (paired; negative = model better)")
    return "\n".join(lines)


def plot_performance(perf: dict, path) -> object:
    """Response (top) and resolution (bottom) vs truth jet pT, one line per method; returns the written path."""
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    bins = np.asarray(perf["pt_bins"])
    centres = np.sqrt(bins[1:] * bins[:-1])
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(8, 9), gridspec_kw={"height_ratios": [1, 1.3]})
    for method, r in perf["methods"].items():
        label = METHOD_LABELS.get(method, method)
        ax1.plot(centres, r["response"], marker="o", label=label)
        ax2.plot(centres, r["resolution"], marker="o", label=label)
    ax1.axhline(1.0, color="grey", lw=1, ls="--")
    ax1.set_ylabel(r"response: median $p_T^{reco}/p_T^{truth}$", fontsize=14)
    ax2.set_ylabel(r"resolution: $(q_{84}-q_{16})/2$ / median", fontsize=14)
    ax2.set_xlabel(r"truth jet $p_T$ [GeV] (anti-$k_T$ R=0.4, LV particles)", fontsize=14)
    ax2.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax2.set_xticks(bins)
    ax2.set_xticklabels([f"{b:g}" for b in bins], fontsize=12)
    ax2.xaxis.set_minor_formatter(NullFormatter())
    ax1.legend(fontsize=12)
    return save_figure(fig, path)


def to_json(perf: dict) -> str:
    """JSON text (NaN written as null)."""
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(perf), indent=2) + "\n"
