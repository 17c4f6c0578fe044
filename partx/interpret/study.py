"""The attention-map study behind ``analysis/attention_maps.py``: build the model, run it on jets with
attention recording, accumulate the statistics, write the JSON summary and the figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from partx.atomic import atomic_write
from partx.cli import UserError
from partx.interpret import plots
from partx.interpret.jets import Jets, exclusive_kt_subjets, short_class
from partx.interpret.record import record_attention
from partx.interpret.stats import AttentionStats, delta_r, masked_softmax, subjet_shares

#: number of hard prongs per JetClass class, for ``--subjets auto`` (at least 2, so that "inside vs between
#: subjets" means something also for QCD)
PRONGS = dict(QCD=2, Hbb=2, Hcc=2, Hgg=2, H4q=4, Hqql=3, Zqq=2, Wqq=2, Tbqq=3, Tbl=2)
#: classes drawn first as examples (1, 2 and 3 prongs), the others after them
EXAMPLE_ORDER = ("QCD", "Hbb", "Tbqq", "Wqq", "H4q")


def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:limit]}" + ("..." if len(text) > limit else "")


def build_model(network: str, data_config, checkpoint: str | None, options: dict) -> torch.nn.Module:
    """``get_model(data_config, **options)`` of a weaver network file, checkpoint loaded (strict), eval mode.

    A weaver checkpoint (``net_best_epoch_state.pt``: a state_dict, or a dict with "model") of weaver's own ParT
    loads into partx's ParT network file unchanged (same parameter names). Raises UserError for a missing or
    unreadable file, options the model refuses, or a checkpoint that does not fit the network and options.
    """
    from partx.perf.models import load_network_module, settle_trimmers

    path = Path(network)
    if not path.is_file():
        raise UserError(f"network file {network} does not exist")
    state = None
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise UserError(f"checkpoint {checkpoint} does not exist")
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's
            raise UserError(f"checkpoint {checkpoint} cannot be read as a PyTorch state_dict: {_one_line(err, 120)}") from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise UserError(f"checkpoint {checkpoint} holds a {type(state).__name__}, not a state_dict")
    try:
        module = load_network_module(path)
    except Exception as err:  # noqa: BLE001
        raise UserError(f"network file {network} cannot be imported: {_one_line(err)}") from None
    if not hasattr(module, "get_model"):
        raise UserError(f"network file {network} has no get_model(data_config, **kwargs)")
    try:
        model, _ = module.get_model(data_config, **options)
    except (ValueError, TypeError, KeyError, AssertionError) as err:
        raise UserError(f"{path.name} cannot be built with options {options}: {_one_line(err)}") from None
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"checkpoint {checkpoint} does not match {path.name} with options {options}: "
                            f"{_one_line(err, 240)}") from None
    settle_trimmers(model)
    return model.eval()


@dataclass
class StudyConfig:
    subjets: str = "2"          # an int, or "auto" (PRONGS per class)
    example_jets: int = 1       # jets per class drawn as heat maps and eta-phi plots
    top_links: int = 15
    batch_size: int = 32
    max_example_classes: int = 4


def _n_subjets(cfg: StudyConfig, cls: str) -> int:
    return PRONGS.get(cls, 2) if cfg.subjets == "auto" else int(cfg.subjets)


def run_study(model: torch.nn.Module, jets: Jets, data_config, out: Path, cfg: StudyConfig, meta: dict) -> list[Path]:
    """Run ``model`` over ``jets`` with attention recording; write summary.json and the figures in ``out``."""
    stats = AttentionStats()
    names = [short_class(c) for c in jets.class_names]
    present = sorted(set(jets.labels.tolist()), key=lambda c: c)
    classes = [names[c] for c in present]
    examples: dict[int, dict] = {}
    preferred = sorted(present, key=lambda c: (EXAMPLE_ORDER.index(names[c]) if names[c] in EXAMPLE_ORDER else 99, c))
    example_quota = {c: cfg.example_jets for c in preferred[: cfg.max_example_classes]}
    subjet_cache: dict[int, np.ndarray] = {}
    record_info: dict[str, dict] = {}
    n_heads = 0
    order = np.arange(len(jets))
    with torch.no_grad(), record_attention(model) as rec:
        for start in tqdm(range(0, len(jets), cfg.batch_size), desc="attention", unit="batch"):
            idx = order[start:start + cfg.batch_size]
            args = [torch.as_tensor(jets.inputs[k][idx]) for k in data_config.input_names]
            rec.clear()
            model(*args)
            labels = jets.labels[idx]
            for r in rec.records:
                n_heads = max(n_heads, r.weights.size(1))
                record_info.setdefault(r.name, dict(kind=r.kind, label=r.label, is_distribution=r.is_distribution,
                                                    has_qk=r.qk is not None, has_u=r.u is not None))
                if not r.is_distribution:
                    continue
                variants = [("full", r.weights)]
                if r.kind == "particle" and r.qk is not None:
                    variants.append(("qk_only", masked_softmax(r.qk, r.key_mask)))
                    if r.u is not None:
                        variants.append(("u_only", masked_softmax(r.u, r.key_mask)))
                keys = [(names[c], "all") for c in labels.tolist()]
                for variant, w in variants:
                    stats.add_rows(keys, r.name, variant, w, r.query_mask, r.key_mask)
            # per-jet geometry: DeltaR, partner types, subjets, class-token ranks, examples
            for b, j in enumerate(idx):
                p = jets.particles[j]
                n = len(p["pt"])
                cls = names[jets.labels[j]]
                if j not in subjet_cache:
                    subjet_cache[j] = exclusive_kt_subjets(p["px"], p["py"], p["pz"], p["energy"], _n_subjets(cfg, cls))
                dr = delta_r(p["deta"], p["dphi"])
                keep = example_quota.get(jets.labels[j], 0) > 0
                if keep:
                    example_quota[jets.labels[j]] -= 1
                    examples[j] = dict(cls=cls, particle=[], cls_maps=[])
                for r in rec.records:
                    n_model = int(r.key_mask[b].sum()) - (1 if r.kind == "class" else 0)
                    if n_model != n:
                        raise RuntimeError(f"jet {j}: the model sees {n_model} particles, the raw branches {n}")
                    if r.kind == "particle":
                        w = r.weights[b, :, :n, :n].numpy()
                        if keep:
                            examples[j]["particle"].append((r.name, w))
                        if r.is_distribution:
                            stats.add_jet_geometry(cls, r.name, w, dr, p["type"])
                            stats.add_jet_geometry("all", r.name, w, dr, p["type"])
                            if n > 1:
                                shares = subjet_shares(w, subjet_cache[j])
                                stats.add_subjets(cls, r.name, shares)
                                stats.add_subjets("all", r.name, shares)
                    else:
                        w = r.weights[b, :, 0, 1:1 + n].numpy()
                        if keep:
                            examples[j]["cls_maps"].append((r.name, r.weights[b, :, :, : 1 + n].numpy()))
                        stats.add_cls_ranks(cls, r.name, w)
                        stats.add_cls_ranks("all", r.name, w)
    summary = stats.summary()
    particle_names = [n for n, i in record_info.items() if i["kind"] == "particle"]
    class_names_rec = [n for n, i in record_info.items() if i["kind"] == "class"]
    distribution = all(record_info[n]["is_distribution"] for n in particle_names)
    jets_per_class = {names[c]: int((jets.labels == c).sum()) for c in present}
    multiplicity = {}
    for c in present:  # particles the model sees per jet (<= the input length): many statistics scale with it
        n = np.asarray([len(jets.particles[j]["pt"]) for j in np.flatnonzero(jets.labels == c)], float)
        multiplicity[names[c]] = dict(mean=float(n.mean()), sem=float(n.std(ddof=1) / np.sqrt(len(n))) if len(n) > 1 else float("nan"))
    written: list[Path] = []
    what = meta.get("model", "model")
    counts = ", ".join(f"{k} {v}" for k, v in jets_per_class.items())

    for j, ex in examples.items():
        stem = f"{ex['cls']}_jet{j}"
        label = record_info[particle_names[0]]["label"] if particle_names else ""
        written.append(plots.heatmaps(ex["particle"], out / f"heatmap_{stem}.png",
                                      f"{what}: particle-block attention, {ex['cls']} jet {j} ({len(jets.particles[j]['pt'])} particles)",
                                      label))
        if ex["cls_maps"]:
            written.append(plots.cls_heatmap(ex["cls_maps"], out / f"cls_heatmap_{stem}.png",
                                             f"{what}: class-token attention, {ex['cls']} jet {j}"))
        written.append(plots.etaphi(jets.particles[j], subjet_cache[j], ex["particle"], out / f"etaphi_{stem}.png",
                                    f"{ex['cls']} jet {j}", cfg.top_links))
    not_applicable = {}
    if distribution and particle_names:
        all_names = particle_names + class_names_rec
        title = f"{what}: binary-attention statistics per class (jets: {counts})"
        written.append(plots.binary_by_class(summary, all_names, classes, out / "binary_stats_by_class.png", title))
        written.append(plots.head_table(summary, all_names, n_heads, out / "binary_stats_heads.png",
                                        f"{what}: fraction of particles with max weight >= 0.5, per head (all classes)"))
        written.append(plots.max_weight_hist(summary, all_names, out / "max_weight_hist.png", f"{what}: all classes"))
        written.append(plots.delta_r_profile(summary, particle_names, out / "attention_vs_delta_r.png", f"{what}: all classes"))
        written.append(plots.partner_types(summary, [particle_names[0], particle_names[-1]], out / "partner_types.png",
                                           f"{what}: attention by particle type, relative to uniform (all classes)"))
        written.append(plots.subjet_shares_plot(summary, particle_names, classes, out / "subjets.png",
                                                f"{what}: exclusive-kT subjets ({cfg.subjets}); jets: {counts}"))
        if any(record_info[n]["has_qk"] for n in particle_names):
            written.append(plots.ablation(summary, particle_names, out / "u_vs_qk.png",
                                          f"{what}: which part of the logits makes attention sparse (all classes)"))
        else:
            not_applicable["u_vs_qk"] = "the mixer's logits are not split into QK^T and U"
    else:
        reason = (f"{record_info[particle_names[0]]['label']}: rows are not probability distributions over particles"
                  if particle_names else "no particle blocks")
        for key in ("binary_stats", "delta_r", "partner_types", "subjets", "u_vs_qk"):
            not_applicable[key] = reason
    if class_names_rec:
        written.append(plots.cls_ranks(summary, class_names_rec, classes, out / "cls_attention_vs_pt_rank.png",
                                       f"{what}: class-token attention"))
    summary.update(meta=meta, jets_per_class=jets_per_class, particles_per_jet=multiplicity, records=record_info, n_heads=n_heads,
                   subjets=cfg.subjets, not_applicable=not_applicable, figures=[p.name for p in written],
                   definitions=dict(
                       max_weight="largest attention weight of a particle's row (one head)",
                       top1_ge_half="max_weight >= 0.5: the particle gives the majority of its attention to one particle",
                       argmax_self="the largest weight is on the particle itself (class blocks: on the class token)",
                       one_other="max_weight >= 0.5 on one OTHER particle (the binary pattern)",
                       eff_keys="exp(entropy) of the row: 1 one-hot, n uniform over n",
                       errors="mean over jets of per-jet means (over particles; heads: 'all' = head mean), "
                              "sem = standard error over jets",
                       qk_only="U removed from the logits: softmax(QK^T/sqrt(d) + pad), same layer inputs",
                       u_only="QK^T removed from the logits: softmax(U + pad), same layer inputs",
                       subjets="intra/inter: attention to other particles of the same / other exclusive-kT subjets; "
                               "link_intra: strongest non-self partner in the same subjet; uniform_*: the same for uniform attention"))
    atomic_write(out / "summary.json", json.dumps(summary, indent=1, default=float))
    written.append(out / "summary.json")
    return written
