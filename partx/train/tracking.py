"""Contrastive training and evaluation of the tracking encoders inside weaver's loop.

weaver-core calls ``get_train_fn`` / ``get_evaluate_fn`` of a network file when they exist
(``weaver/train.py``); ``make_train_fn`` / ``make_evaluate_fn`` build functions with weaver's signatures
(``weaver/utils/nn/tools.py`` ``train_classification`` / ``evaluate_classification``) that

  * unpack a weaver batch (channel-first inputs ``(B, C, L)``) into the encoder's batch-first
    ``x (B, N, C)``, ``coords (B, N, D)``, ``mask (B, N)`` and the per-hit truth, cropping the padding to
    the longest event of the batch (data files pad every event to a fixed length);
  * build the InfoNCE candidate pairs per event on the CPU (``partx.losses.infonce``: HEPT's radius pairs
    + 20% random pairs in training, or Lampa's kNN pairs) and train on batches of several events;
  * evaluate with HEPT's acc@k / precision / recall at pT > 0, 0.5, 0.9 (``partx.metrics.tracking``); the
    training-time metric is ``accuracy@0.9`` (HEPT's ``main_metric``, higher is better); at test time also
    DBSCAN tracks, DM / LHC efficiencies, fake rates and the TrackML score, written as a metrics JSON
    beside weaver's ``--predict-output`` (``<output stem>.metrics.json``) with efficiency plots, and the
    per-hit embeddings returned as weaver's ``scores`` (one (n_hits, E) array per event).

Batch layout (``TrackingInputs``): defaults are the names of data/TrackML/*.yaml (``hit_points``,
``hit_features``, ``hit_truth``, ``hit_mask``; truth columns particle index, pT, reconstructable, particle
eta). Real hits must come first in each row (weaver's constant padding puts them there).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from partx.losses.infonce import add_random_pairs, batched_info_nce, hept_point_pairs, knn_point_pairs
from partx.metrics.tracking import (
    build_tracks, efficiency_vs, knn_metrics, match_tracks, query_mask, track_efficiencies, trackml_score, tune_dbscan_eps,
)
from partx.train.common import (WEAVER_OPTIONS, UnknownNetworkOption, crop_inputs, evaluate_events, predict_path, seed_everything,
                                train_epoch, weaver_outputs)
from partx.train.common import check_options as common_check_options

try:  # log through weaver's logger when weaver runs us (its handlers print to the console and the log file)
    from weaver.utils.logger import _logger
except ImportError:  # pragma: no cover - weaver is a dependency, this only guards odd installs
    _logger = logging.getLogger("partx.train.tracking")


@dataclass
class TrackingInputs:
    """Where a weaver batch keeps what the tracking loop needs."""

    points: str = "hit_points"
    features: str = "hit_features"
    truth: str = "hit_truth"
    mask: str = "hit_mask"
    particle_id: int = 0  # columns of the truth input
    pt: int = 1
    reconstructable: int = 2
    particle_eta: int | None = 3
    weight: int | None = None  # TrackML truth weight column, if the data has one

    @property
    def model_inputs(self) -> tuple[str, str, str]:
        """Inputs the model itself consumes (the order of its forward arguments)."""
        return (self.points, self.features, self.mask)


def unpack(X: dict, io: TrackingInputs, dev) -> dict:
    """weaver batch -> dict of batch-first tensors cropped to the longest event: x (B, N, C),
    coords (B, N, D), mask (B, N) bool, particle_id / pt / reconstructable (B, N) (+ eta, weight if present)."""
    mask, t = crop_inputs(X, io.mask, (io.features, io.points, io.truth), dev)
    out = dict(x=t[io.features], coords=t[io.points], mask=mask)
    truth = t[io.truth]
    out["particle_id"] = truth[..., io.particle_id].round().long()
    out["pt"] = truth[..., io.pt]
    out["reconstructable"] = truth[..., io.reconstructable]
    if io.particle_eta is not None:
        out["particle_eta"] = truth[..., io.particle_eta]
    if io.weight is not None:
        out["weight"] = truth[..., io.weight]
    return out


def event_pairs(batch: dict, variant: str, training: bool, random_frac: float = 0.2, radius: float = 1.0, max_neighbors: int = 256, k: int = 60) -> list[torch.Tensor]:
    """Candidate pairs of every event (indices into its real hits), on the batch's device."""
    pairs = []
    for b in range(batch["mask"].shape[0]):
        m = batch["mask"][b]
        pos = batch["coords"][b, m, :2].detach().cpu().double().numpy()  # (eta, phi)
        if variant == "hept_radius":
            p = torch.from_numpy(hept_point_pairs(pos, batch["particle_id"][b, m].cpu().numpy(), radius, max_neighbors))
            if training and random_frac > 0:
                p = add_random_pairs(p, int(m.sum()), random_frac)
        else:
            p = torch.from_numpy(knn_point_pairs(pos, k))
        pairs.append(p.to(batch["mask"].device))
    return pairs


def embed(model, batch: dict) -> torch.Tensor:
    """(B, N, E) embeddings of an ``unpack``-ed batch by the weaver-facing model (channel-first in and out)."""
    emb = model(batch["coords"].transpose(1, 2), batch["x"].transpose(1, 2), batch["mask"][:, None].float())
    return emb.transpose(1, 2)  # model returns (B, E, N), weaver's channel-first convention


def _loss(model, batch, variant, training, loss_kw):
    emb = embed(model, batch)
    pairs = event_pairs(batch, variant, training, **loss_kw.get("pairs", {}))
    loss = batched_info_nce(emb, pairs, batch["particle_id"], batch["reconstructable"], batch["pt"], batch["mask"], variant=variant, **loss_kw.get("nce", {}))
    return loss, emb


def make_train_fn(io: TrackingInputs | None = None, variant: str = "hept_radius", **loss_kw):
    """weaver ``train`` function training with InfoNCE (``variant`` "hept_radius" or "lampa_knn")."""
    io = io or TrackingInputs()

    def train(model, loss_func, opt, scheduler, train_loader, dev, epoch, steps_per_epoch=None, grad_scaler=None, tb_helper=None, extra_args=None):
        def step(X):
            batch = unpack(X, io, dev)
            return _loss(model, batch, variant, True, loss_kw)[0], batch["mask"].shape[0]

        return train_epoch(model, opt, scheduler, train_loader, dev, epoch, step, "InfoNCE", steps_per_epoch,
                           grad_scaler, tb_helper)

    return train


def events_of(batch: dict, emb: torch.Tensor) -> list[dict]:
    """Per real event of a batch: numpy truth arrays (particle_id, pt, reconstructable, ...) and ``emb`` (n, E)."""
    out = []
    for b in range(emb.shape[0]):
        m = batch["mask"][b]
        ev = {k: v[b, m].detach().cpu().numpy() for k, v in batch.items() if k not in ("x", "coords", "mask")}
        ev["emb"] = emb[b, m].detach().cpu().numpy()
        out.append(ev)
    return out


def test_physics(events: list[dict], eps: float, pt_min: float = 0.9) -> tuple[dict, dict]:
    """DBSCAN tracks per event -> mean DM / LHC efficiencies, fake rates, TrackML score; and the per-particle
    found flags with pT / eta for efficiency curves."""
    per, curves = [], {"pt": [], "eta": [], "dm": [], "lhc": []}
    for ev in events:
        tracks = build_tracks(ev["emb"], eps)
        r = track_efficiencies(tracks, ev["particle_id"], ev["reconstructable"], ev["pt"], pt_min)
        w = ev.get("weight", np.where(ev["particle_id"] > 0, 1.0, 0.0))
        r["trackml_score" if "weight" in ev else "trackml_score_unit_weights"] = trackml_score(tracks, ev["particle_id"], w)
        per.append(r)
        m = match_tracks(tracks, ev["particle_id"], min_track_hits=3)
        tgt_hits = query_mask(ev["particle_id"], ev["reconstructable"], ev["pt"], pt_min)
        pids, first = np.unique(ev["particle_id"][tgt_hits], return_index=True)
        sel = np.searchsorted(m["particles"], pids)
        curves["pt"].append(ev["pt"][tgt_hits][first])
        curves["eta"].append(ev.get("particle_eta", np.full(len(ev["pt"]), np.nan))[tgt_hits][first])
        curves["dm"].append(m["dm_found"][sel])
        curves["lhc"].append(m["lhc_found"][sel])
    keys = per[0].keys() if per else []
    summary = {k: float(np.nanmean([p[k] for p in per])) for k in keys}
    return summary, {k: np.concatenate(v) if v else np.zeros(0) for k, v in curves.items()}


def efficiency_plots(curves: dict, stem: Path) -> list[Path]:
    """DM and LHC efficiency vs particle pT and eta, as ``<stem>_eff_pt.png`` / ``<stem>_eff_eta.png``."""
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    paths = []
    for var, bins, label in (("pt", np.array([0.9, 1.5, 2, 3, 5, 10, 100]), r"particle $p_T$ [GeV]"), ("eta", np.linspace(-4, 4, 17), r"particle $\eta$")):
        fig, ax = plt.subplots()
        centres = 0.5 * (bins[1:] + bins[:-1])
        for rule in ("dm", "lhc"):
            eff, n, _ = efficiency_vs(curves[var], curves[rule], bins)
            ax.errorbar(centres, eff, yerr=np.sqrt(np.clip(eff * (1 - eff), 0, None) / np.maximum(n, 1)), marker="o", ls="", label=rule.upper())
        ax.set_xlabel(label)
        ax.set_ylabel("efficiency")
        if var == "pt":
            ax.set_xscale("log")
        ax.legend()
        paths.append(save_figure(fig, f"{stem}_eff_{var}.png"))
    return paths


_predict_path = predict_path  # the old private name


#: DBSCAN radii tried on the validation events (embedding units; InfoNCE's sigma is 0.75). Early in training
#: the embedding clusters are wide (Mamba-a's tuned radius sat at 1.0, the old top of the grid), so the grid
#: reaches 2 sigma; a radius tuned at either edge is logged as a warning.
EPS_GRID = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5)
#: the radius used when none was tuned (no validation ran, e.g. ``--predict`` of a foreign checkpoint)
DEFAULT_EPS = 0.1


def _eps_file(args) -> Path | None:
    prefix = getattr(args, "model_prefix", None) if args is not None else None
    return Path(f"{prefix}_dbscan_eps.json") if prefix and not str(prefix).endswith(".onnx") else None


def record_tuned_eps(args, epoch: int, metric: float, events: list[dict]) -> float | None:
    """Tune the DBSCAN radius on this validation's events (DM efficiency, ``tune_dbscan_eps``) and keep it in
    ``<model_prefix>_dbscan_eps.json`` when this epoch is the best so far by weaver's rule (validation metric
    strictly higher than every earlier one), i.e. for the checkpoint weaver copies to ``_best_epoch_state.pt``."""
    path = _eps_file(args)
    if path is None or not events:
        return None
    old = json.loads(path.read_text()) if path.is_file() else None
    if old is not None and not metric > old["val_metric"]:
        return None
    eps, scores = tune_dbscan_eps(events, EPS_GRID)
    from partx.atomic import atomic_write

    atomic_write(path, json.dumps({"epoch": epoch, "val_metric": metric, "eps": eps, "dm_efficiency_by_eps": scores}, indent=2) + "\n")
    _logger.info("DBSCAN eps tuned on validation (epoch %d): %g (DM efficiency %.4f)", epoch, eps, scores[eps])
    if eps in (min(EPS_GRID), max(EPS_GRID)):
        _logger.warning("the tuned DBSCAN eps %g is at the edge of the grid %s: the best radius may lie outside it "
                        "(set it with -o dbscan_eps)", eps, EPS_GRID)
    return eps


def tuned_eps(args) -> float | None:
    """The radius recorded for the best validation epoch, if any."""
    path = _eps_file(args)
    return float(json.loads(path.read_text())["eps"]) if path is not None and path.is_file() else None


def make_evaluate_fn(io: TrackingInputs | None = None, variant: str = "hept_radius", dbscan_eps: float | None = None, **loss_kw):
    """weaver ``evaluate`` function: loss + HEPT's acc@k metrics; at test time also tracks and the JSON.

    DBSCAN radius: ``dbscan_eps`` if given (``-o dbscan_eps``); else the one tuned on the validation events
    of the best epoch (``record_tuned_eps``); else ``DEFAULT_EPS``."""
    io = io or TrackingInputs()

    def evaluate(model, test_loader, dev, epoch, for_training=True, loss_func=None, steps_per_epoch=None, eval_metrics=None, tb_helper=None, extra_args=None):
        def step(X):
            batch = unpack(X, io, dev)
            loss, emb = _loss(model, batch, variant, False, loss_kw)
            return loss, events_of(batch, emb)

        events, loss, observers = evaluate_events(model, test_loader, for_training, steps_per_epoch, step)
        metrics = knn_metrics(events)
        metrics["loss"] = loss
        _logger.info("Eval metrics: %s", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        main = metrics["accuracy@0.9"]
        args = (extra_args or {}).get("args")
        if for_training:
            if dbscan_eps is None:
                record_tuned_eps(args, epoch, main, events)
            return main
        eps, how = (dbscan_eps, "option") if dbscan_eps is not None else (tuned_eps(args), "validation")
        if eps is None:
            eps, how = DEFAULT_EPS, "default"
        phys, curves = test_physics(events, eps)
        metrics.update(phys)
        metrics.update(dbscan_eps=eps, dbscan_eps_from=how, n_events=len(events), variant=variant)
        out = _predict_path(args)
        if out:
            from partx.atomic import atomic_write

            stem = Path(out).with_suffix("")
            stem.parent.mkdir(parents=True, exist_ok=True)
            path = atomic_write(f"{stem}.metrics.json", json.dumps(metrics, indent=2) + "\n")
            print(f"tracking metrics: {path}")
            efficiency_plots(curves, stem)
        scores, labels, obs = weaver_outputs([ev["emb"] for ev in events], {"particle_id": [ev["particle_id"] for ev in events]},
                                             observers, test_loader)
        return main, scores, labels, obs

    return evaluate


#: ``-o`` options read by the train / evaluate functions (weaver passes every ``-o`` option to all four
#: network-file hooks); everything else goes to ``TrackingConfig``.
TRAIN_OPTIONS = ("loss_variant", "dbscan_eps", "random_frac", "radius", "max_neighbors", "knn_k", "tau", "sigma", "size", "seed")


class TrackingWeaverModel(torch.nn.Module):
    """weaver-facing wrapper: channel-first inputs ``points (B, D, L)``, ``features (B, C, L)``,
    ``mask (B, 1, L)`` -> embeddings ``(B, E, L)`` (zero on padding)."""

    def __init__(self, cfg):
        super().__init__()
        from partx.models.tracking import TrackingEncoder

        self.encoder = TrackingEncoder(cfg)

    def forward(self, points: torch.Tensor, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(features.transpose(1, 2), points.transpose(1, 2), mask[:, 0] > 0).transpose(1, 2)


class InfoNCELoss(torch.nn.Module):
    """Named placeholder handed to weaver as ``loss_func`` (the custom train function computes the loss)."""

    def __init__(self, variant: str):
        super().__init__()
        self.variant = variant

    def extra_repr(self) -> str:
        return f"variant={self.variant}"


class UnknownTrackingOption(UnknownNetworkOption):
    """A ``-o`` option no tracking hook reads (one line; see ``partx.train.common.UnknownNetworkOption``)."""


def valid_options() -> tuple[str, ...]:
    """Every ``-o`` key the tracking hooks accept: ``TRAIN_OPTIONS`` and the ``TrackingConfig`` fields
    (except ``model``, fixed by the network file, and ``in_dim`` / ``coords_dim``, read from the data config)."""
    from dataclasses import fields

    from partx.models.tracking import TrackingConfig

    return tuple(TRAIN_OPTIONS) + WEAVER_OPTIONS + tuple(f.name for f in fields(TrackingConfig) if f.name not in ("model", "in_dim", "coords_dim"))


def check_options(kwargs: dict) -> dict:
    """``kwargs`` unchanged, or UnknownTrackingOption naming the unknown keys and the valid ones."""
    return common_check_options(kwargs, valid_options(), "tracking", UnknownTrackingOption)


def _split(kwargs: dict) -> tuple[dict, dict]:
    train = {k: v for k, v in kwargs.items() if k in TRAIN_OPTIONS}
    return {k: v for k, v in kwargs.items() if k not in TRAIN_OPTIONS + WEAVER_OPTIONS}, train


def _loss_kw(opts: dict) -> dict:
    pairs = {k: opts[k] for k in ("random_frac", "radius", "max_neighbors") if k in opts}
    if "knn_k" in opts:
        pairs["k"] = opts["knn_k"]
    return dict(pairs=pairs, nce={k: opts[k] for k in ("tau", "sigma") if k in opts})


def tracking_network(model: str, size: str = "S", io: TrackingInputs | None = None, flops_hits: int = 1000, **defaults):
    """weaver network-file hooks ``(get_model, get_loss, get_train_fn, get_evaluate_fn)`` for a tracking
    encoder. ``-o size M``, ``-o loss_variant lampa_knn``, ``-o dbscan_eps 0.2`` or any ``TrackingConfig``
    field (``-o ordering lampa``) adjust it. weaver's FLOP printout runs the model on ``flops_hits`` hits."""
    io = io or TrackingInputs()

    def get_model(data_config, **kwargs):
        from partx.models.tracking import tracking_config

        model_kw, opts = _split(check_options(dict(defaults, **kwargs)))
        if "seed" in opts:  # a repeatable initialisation (weaver seeds nothing; its file order stays random)
            seed = int(opts["seed"])
            seed_everything(seed)
            model_kw.setdefault("lsh_seed", seed)  # HEPT draws its LSH projections per run, too
        n_in = len(data_config.input_dicts[io.features])
        n_coords = len(data_config.input_dicts[io.points])
        cfg = tracking_config(model, opts.get("size", size), in_dim=n_in, coords_dim=n_coords, **model_kw)
        names = list(io.model_inputs)
        shapes = {k: (1, data_config.input_shapes[k][1], min(flops_hits, data_config.input_shapes[k][2])) for k in names}
        info = {
            "input_names": names,
            "input_shapes": shapes,
            "output_names": ["embedding"],
            "dynamic_axes": {**{k: {0: "N", 2: "n_hits"} for k in names}, "embedding": {0: "N", 2: "n_hits"}},
        }
        return TrackingWeaverModel(cfg), info

    def get_loss(data_config, **kwargs):
        return InfoNCELoss(_split(check_options(dict(defaults, **kwargs)))[1].get("loss_variant", "hept_radius"))

    def get_train_fn(data_config, **kwargs):
        opts = _split(check_options(dict(defaults, **kwargs)))[1]
        return make_train_fn(io, opts.get("loss_variant", "hept_radius"), **_loss_kw(opts))

    def get_evaluate_fn(data_config, **kwargs):
        opts = _split(check_options(dict(defaults, **kwargs)))[1]
        eps = float(opts["dbscan_eps"]) if "dbscan_eps" in opts else None
        return make_evaluate_fn(io, opts.get("loss_variant", "hept_radius"), dbscan_eps=eps, **_loss_kw(opts))

    return get_model, get_loss, get_train_fn, get_evaluate_fn
