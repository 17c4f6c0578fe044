"""Training and evaluation of the pileup classifiers inside weaver's loop (network files ``example_*Pileup.py``).

weaver-core calls ``get_train_fn`` / ``get_evaluate_fn`` of a network file when they exist; the functions
here have weaver's signatures (as partx.train.tracking, whose shared pieces live in partx.train.common):

  * a weaver batch (channel-first ``(B, C, L)``) becomes batch-first ``features (B, N, 7)``, ``pid (B, N)``,
    ``coords (B, N, 4)``, ``mask (B, N)``, ``is_lv``, ``is_scored`` (B, N), cropped to the longest event;
  * the loss is weaver's ``loss_func``: the focal loss (partx.losses.focal, gamma 2, alpha 0.25) of the
    per-particle logits on the scored particles only (neutral, pT > 0.9 GeV), as HEPT's pileup trainer;
  * the training-time metric (weaver keeps the best epoch by it) is the pooled ROC AUC on the scored
    particles of the validation events; at test time also accuracy and average precision, pooled and per
    event (partx.metrics.pileup), and the jet-level table (partx.metrics.pileup_jets: response / resolution
    vs truth pT for no mitigation, CHS, PUPPI-like, the model) -- ``<output stem>.metrics.json`` beside
    weaver's ``--predict-output``, the table printed and plotted (``<stem>_jets.png``); weaver's scores are
    the per-particle LV probabilities, one array per event.

Batch layout (``PileupInputs``): the names of data/Pileup/*.yaml.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from partx.train.common import (WEAVER_OPTIONS, UnknownNetworkOption, crop_inputs, evaluate_events, predict_path, seed_everything,
                                train_epoch, weaver_outputs)
from partx.train.common import check_options as common_check_options

try:
    from weaver.utils.logger import _logger
except ImportError:  # pragma: no cover
    _logger = logging.getLogger("partx.train.pileup")

#: order of the continuous features in the ``features`` input (HEPT's x without pid_class)
FEATURES = ("eta", "phi", "px", "py", "pt", "e", "rapidity")


@dataclass
class PileupInputs:
    """Where a weaver batch keeps what the pileup loop needs."""

    features: str = "part_features"  # FEATURES, in that order
    pid: str = "part_pid"
    coords: str = "part_coords"
    mask: str = "part_mask"
    truth: str = "part_truth"  # columns: is_lv, is_scored
    is_lv: int = 0
    is_scored: int = 1

    @property
    def model_inputs(self) -> tuple[str, str, str, str]:
        return (self.features, self.pid, self.coords, self.mask)


def unpack(X: dict, io: PileupInputs, dev) -> dict:
    """weaver batch -> batch-first tensors cropped to the longest event (see the module doc)."""
    mask, t = crop_inputs(X, io.mask, (io.features, io.pid, io.coords, io.truth), dev)
    truth = t[io.truth]
    return dict(features=t[io.features], pid=t[io.pid][..., 0], coords=t[io.coords], mask=mask,
                is_lv=truth[..., io.is_lv], is_scored=(truth[..., io.is_scored] > 0.5) & mask)


def forward_logits(model, batch: dict) -> torch.Tensor:
    """(B, N) logits from the weaver-facing model (channel-first inputs)."""
    return model(batch["features"].transpose(1, 2), batch["pid"][:, None], batch["coords"].transpose(1, 2),
                 batch["mask"][:, None].float())


def make_train_fn(io: PileupInputs | None = None):
    """weaver ``train`` function: weaver's ``loss_func`` (the focal loss) on the scored particles."""
    io = io or PileupInputs()

    def train(model, loss_func, opt, scheduler, train_loader, dev, epoch, steps_per_epoch=None, grad_scaler=None, tb_helper=None, extra_args=None):
        def step(X):
            batch = unpack(X, io, dev)
            return loss_func(forward_logits(model, batch), batch["is_lv"], batch["is_scored"]), batch["mask"].shape[0]

        return train_epoch(model, opt, scheduler, train_loader, dev, epoch, step, "focal", steps_per_epoch, grad_scaler, tb_helper)

    return train


def events_of(batch: dict, logits: torch.Tensor) -> list[dict]:
    """Per real event: numpy arrays of the kinematics, truth and predicted LV probability (what the metrics read)."""
    out = []
    prob = torch.sigmoid(logits.float())
    for b in range(logits.shape[0]):
        m = batch["mask"][b]
        f = batch["features"][b, m].detach().cpu().double().numpy()
        ev = {k: f[:, i] for i, k in enumerate(FEATURES)}
        pid = batch["pid"][b, m].detach().cpu().numpy()
        ev.update(charged=np.round(pid) == 0, pid_class=pid, is_lv=batch["is_lv"][b, m].cpu().numpy() > 0.5,
                  is_scored=batch["is_scored"][b, m].cpu().numpy(), prob=prob[b, m].detach().cpu().numpy())
        out.append(ev)
    return out


def write_test_outputs(events: list[dict], metrics: dict, out: str | None, jets: bool = True) -> dict:
    """Add the jet-level table to ``metrics``, print it, and write ``<stem>.metrics.json`` and ``<stem>_jets.png``
    beside ``out`` (weaver's predictions path) when given."""
    from partx.metrics.pileup_jets import format_table, jet_performance, plot_performance, to_json

    if jets:
        from partx.metrics.pileup import event_bootstrap, puppi_like_metrics

        base = puppi_like_metrics(events)
        metrics["puppi_like"] = base
        boot = metrics["bootstrap"] = event_bootstrap(events)
        se = boot["se"]
        print("particle level, scored neutrals (pooled; ± bootstrap SE over events): " + ", ".join(
            f"{k} model {metrics[k]:.4f} ± {se['prob'][k]:.4f} / PUPPI-like {base[k]:.4f} ± {se['w_puppi'][k]:.4f}"
            for k in ("roc_auc", "average_precision")) + f"; accuracy model {metrics['accuracy']:.4f} / PUPPI-like {base['accuracy']:.4f}",
            flush=True)
        perf = jet_performance(events)
        metrics["jets"] = perf
        print(format_table(perf), flush=True)
    if out:
        from partx.atomic import atomic_write

        stem = Path(out).with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        path = atomic_write(f"{stem}.metrics.json", to_json(metrics))
        print(f"pileup metrics: {path}")
        if jets:
            plot_performance(metrics["jets"], f"{stem}_jets.png")
    return metrics


def make_evaluate_fn(io: PileupInputs | None = None, jets: bool = True, threshold: float = 0.5):
    """weaver ``evaluate`` function: loss + pooled ROC AUC (the training-time metric); at test time every
    particle metric, the jet table, the JSON and plot, and the per-particle probabilities as weaver's scores."""
    io = io or PileupInputs()

    def evaluate(model, test_loader, dev, epoch, for_training=True, loss_func=None, steps_per_epoch=None, eval_metrics=None, tb_helper=None, extra_args=None):
        from partx.metrics.pileup import particle_metrics

        def step(X):
            batch = unpack(X, io, dev)
            logits = forward_logits(model, batch)
            loss = loss_func(logits, batch["is_lv"], batch["is_scored"]) if loss_func is not None else None
            return loss, events_of(batch, logits)

        events, loss, observers = evaluate_events(model, test_loader, for_training, steps_per_epoch, step)
        metrics = particle_metrics(events, threshold)
        metrics["loss"] = loss
        _logger.info("Eval metrics: %s", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        main = metrics["roc_auc"]
        if for_training:
            return main
        write_test_outputs(events, metrics, predict_path((extra_args or {}).get("args")), jets)
        scores, labels, obs = weaver_outputs(
            [ev["prob"] for ev in events],
            {"is_lv": [ev["is_lv"].astype(np.int8) for ev in events], "is_scored": [ev["is_scored"].astype(np.int8) for ev in events]},
            observers, test_loader)
        return main, scores, labels, obs

    return evaluate


class PileupWeaverModel(torch.nn.Module):
    """weaver-facing wrapper: ``features (B, F, L)``, ``pid (B, 1, L)``, ``coords (B, D, L)``, ``mask (B, 1, L)``
    -> per-particle logits ``(B, L)`` (0 on padding)."""

    def __init__(self, cfg):
        super().__init__()
        from partx.models.pileup import PileupClassifier

        self.classifier = PileupClassifier(cfg)

    def forward(self, features: torch.Tensor, pid: torch.Tensor, coords: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(features.transpose(1, 2), pid[:, 0], coords.transpose(1, 2), mask[:, 0] > 0)


#: ``-o`` options read by the hooks themselves; everything else goes to ``TrackingConfig``
TRAIN_OPTIONS = ("size", "focal_gamma", "focal_alpha", "focal_alpha_mode", "jet_metrics", "threshold", "seed")


class UnknownPileupOption(UnknownNetworkOption):
    """A ``-o`` option no pileup hook reads (one line, exit 2 under partx.weaver_run)."""


def valid_options() -> tuple[str, ...]:
    from partx.models.tracking import TrackingConfig

    return TRAIN_OPTIONS + WEAVER_OPTIONS + tuple(f.name for f in fields(TrackingConfig) if f.name not in ("model", "in_dim", "coords_dim"))


def _split(kwargs: dict) -> tuple[dict, dict]:
    common_check_options(kwargs, valid_options(), "pileup", UnknownPileupOption)
    opts = {k: v for k, v in kwargs.items() if k in TRAIN_OPTIONS}
    return {k: v for k, v in kwargs.items() if k not in TRAIN_OPTIONS + WEAVER_OPTIONS}, opts


def pileup_network(model: str, size: str | None = None, io: PileupInputs | None = None, flops_particles: int = 1000, **defaults):
    """weaver network-file hooks ``(get_model, get_loss, get_train_fn, get_evaluate_fn)`` for a pileup
    classifier. ``-o size S|M|L`` (tracking sizes; default the paper's pileup size), ``-o focal_gamma 0``,
    ``-o focal_alpha 0.5``, ``-o focal_alpha_mode 'hept'``, ``-o jet_metrics False`` or any ``TrackingConfig``
    field adjust it. weaver's FLOP printout runs the model on ``flops_particles`` particles."""
    from partx.models.pileup import PILEUP_SIZE

    io = io or PileupInputs()
    size = size or PILEUP_SIZE

    def get_model(data_config, **kwargs):
        from partx.models.pileup import pileup_config

        model_kw, opts = _split(dict(defaults, **kwargs))
        if "seed" in opts:  # a repeatable initialisation (as the tracking hooks' -o seed)
            seed_everything(int(opts["seed"]))
            model_kw.setdefault("lsh_seed", int(opts["seed"]))
        n_feat = len(data_config.input_dicts[io.features])
        n_coords = len(data_config.input_dicts[io.coords])
        cfg = pileup_config(model, opts.get("size", size), n_features=n_feat, coords_dim=n_coords, **model_kw)
        names = list(io.model_inputs)
        shapes = {k: (1, data_config.input_shapes[k][1], min(flops_particles, data_config.input_shapes[k][2])) for k in names}
        info = {"input_names": names, "input_shapes": shapes, "output_names": ["logit"],
                "dynamic_axes": {**{k: {0: "N", 2: "n_particles"} for k in names}, "logit": {0: "N", 1: "n_particles"}}}
        return PileupWeaverModel(cfg), info

    def get_loss(data_config, **kwargs):
        from partx.losses.focal import FocalLoss

        opts = _split(dict(defaults, **kwargs))[1]
        return FocalLoss(opts.get("focal_gamma", 2.0), opts.get("focal_alpha", 0.25), opts.get("focal_alpha_mode", "lin"))

    def get_train_fn(data_config, **kwargs):
        _split(dict(defaults, **kwargs))
        return make_train_fn(io)

    def get_evaluate_fn(data_config, **kwargs):
        opts = _split(dict(defaults, **kwargs))[1]
        return make_evaluate_fn(io, jets=bool(opts.get("jet_metrics", True)), threshold=float(opts.get("threshold", 0.5)))

    return get_model, get_loss, get_train_fn, get_evaluate_fn


