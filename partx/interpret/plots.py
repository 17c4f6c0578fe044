"""Figures of ParT attention (matplotlib + mplhep through ``partx.plotting``); each returns the written path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from partx.interpret.stats import DELTA_R_BINS, MAX_WEIGHT_BINS, PARTICLE_TYPES
from partx.plotting import hep_style, save_figure

TYPE_COLOURS = ("tab:blue", "tab:green", "gold", "tab:red", "tab:purple")


def _plt():
    import matplotlib.pyplot as plt

    hep_style()
    return plt


def heatmaps(maps: list[tuple[str, np.ndarray]], path: Path, title: str, label: str) -> Path:
    """One panel per (layer, head): maps = [(layer name, (H, n, n))] over the jet's pT-ordered real particles."""
    from matplotlib.colors import PowerNorm

    plt = _plt()
    n_layers, n_heads = len(maps), maps[0][1].shape[0]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(2.2 * n_heads + 1, 2.2 * n_layers + 0.6), squeeze=False)
    vmax = max(float(np.abs(m).max()) for _, m in maps) or 1.0
    signed = any(float(m.min()) < 0 for _, m in maps)
    for r, (name, m) in enumerate(maps):
        for h in range(n_heads):
            ax = axes[r, h]
            if signed:
                im = ax.imshow(m[h], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            else:
                im = ax.imshow(m[h], cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=vmax), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"head {h}", fontsize=11)
            if h == 0:
                ax.set_ylabel(name, fontsize=11)
    fig.suptitle(f"{title}\n{label}; rows: query, columns: key (pT order)", fontsize=12)
    cbar = fig.colorbar(im, ax=axes, shrink=0.6)
    cbar.set_label("weight", fontsize=12)
    cbar.ax.tick_params(labelsize=10)
    return save_figure(fig, path, quiet=True)


def cls_heatmap(maps: list[tuple[str, np.ndarray]], path: Path, title: str) -> Path:
    """Class-token attention of one jet: one panel per class-attention block, rows = heads, columns = keys
    (the class token itself, then the particles in pT order); maps = [(layer name, (H, 1, 1 + n))]."""
    from matplotlib.colors import PowerNorm

    plt = _plt()
    fig, axes = plt.subplots(len(maps), 1, figsize=(10, 1.2 + 0.45 * maps[0][1].shape[0] * len(maps) + 0.8 * len(maps)),
                             squeeze=False)
    vmax = max(float(m.max()) for _, m in maps) or 1.0
    for ax, (name, m) in zip(axes[:, 0], maps):
        im = ax.imshow(m[:, 0, :], aspect="auto", cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=vmax),
                       interpolation="nearest")
        ax.set_yticks(range(m.shape[0]), [f"head {h}" for h in range(m.shape[0])], fontsize=9)
        ax.set_title(name, fontsize=11)
        ax.tick_params(axis="x", labelsize=9)
    axes[-1, 0].set_xlabel("key: 0 = class token, then particles by pT rank", fontsize=11)
    fig.suptitle(title, fontsize=12)
    cbar = fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.8)
    cbar.set_label("weight", fontsize=11)
    cbar.ax.tick_params(labelsize=9)
    return save_figure(fig, path, quiet=True)


def etaphi(p: dict, subjets: np.ndarray, maps: list[tuple[str, np.ndarray]], path: Path, title: str, top: int) -> Path:
    """A jet's particles on the (deta, dphi) plane, size ~ pT, colour = type, with the ``top`` strongest
    non-self links of each layer (head mean): solid = inside one exclusive-kT subjet, dashed = between subjets."""
    plt = _plt()
    n_panels = len(maps)
    cols = min(4, n_panels)
    rows = -(-n_panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.6 * rows + 0.5), squeeze=False)
    size = 300 * p["pt"] / p["pt"].max() + 5
    colours = [TYPE_COLOURS[t] if t >= 0 else "grey" for t in p["type"]]
    for k, (name, m) in enumerate(maps):
        ax = axes[k // cols, k % cols]
        w = np.abs(m).mean(axis=0)
        np.fill_diagonal(w, 0)
        order = np.argsort(w, axis=None)[::-1][:top]
        wmax = w.flat[order[0]] if len(order) and w.flat[order[0]] > 0 else 1.0
        for flat in order:
            i, j = divmod(int(flat), w.shape[1])
            same = subjets[i] == subjets[j]
            ax.plot([p["deta"][i], p["deta"][j]], [p["dphi"][i], p["dphi"][j]], ls="-" if same else "--",
                    color="black" if same else "tab:red", lw=0.6 + 2.5 * w[i, j] / wmax, alpha=0.3 + 0.7 * w[i, j] / wmax)
        ax.scatter(p["deta"], p["dphi"], s=size, c=colours, edgecolors="k", linewidths=0.3, zorder=3)
        for s in np.unique(subjets):
            sel = subjets == s
            wts = p["pt"][sel]
            ax.scatter([np.average(p["deta"][sel], weights=wts)], [np.average(p["dphi"][sel], weights=wts)],
                       marker="x", s=120, color="k", zorder=4)
        ax.set_title(name, fontsize=12)
        ax.set_xlabel(r"$\Delta\eta$", fontsize=12)
        ax.set_ylabel(r"$\Delta\phi$", fontsize=12)
        ax.tick_params(labelsize=9)
    for k in range(n_panels, rows * cols):
        axes[k // cols, k % cols].axis("off")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=c, label=t) for t, c in zip(PARTICLE_TYPES, TYPE_COLOURS)]
    handles += [Line2D([], [], color="black", label="link inside a subjet"),
                Line2D([], [], color="tab:red", ls="--", label="link between subjets"),
                Line2D([], [], marker="x", ls="", color="k", label="subjet axis (excl. kT)")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=10, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"{title}: {top} strongest links per layer (head mean; size ~ pT)", fontsize=13)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return save_figure(fig, path, quiet=True)


def _layer_axis(names: list[str]) -> list[str]:
    return [n.replace("blocks.", "P").replace("cls_P", "C") for n in names]


def binary_by_class(summary: dict, names: list[str], classes: list[str], path: Path, title: str) -> Path:
    """Mean max weight, fraction of particles giving >= 0.5 to one other particle, effective keys, per layer and class
    (mean over jets of the per-jet mean over particles and heads; error bars: standard error over jets)."""
    plt = _plt()
    stats = [("max_weight", "mean max weight"), ("one_other", "fraction giving >= 0.5 to one other"),
             ("eff_keys", "effective keys exp(entropy)")]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    x = np.arange(len(names))
    for c_i, cls in enumerate(classes):
        for ax, (stat, label) in zip(axes, stats):
            vals = [summary["binary"].get(cls, {}).get(n, {}).get("full", {}).get("all", {}).get(stat) for n in names]
            mean = [v["mean"] if v else np.nan for v in vals]
            sem = [v["sem"] if v else np.nan for v in vals]
            ax.errorbar(x + 0.04 * (c_i - len(classes) / 2), mean, yerr=sem, marker="o", ms=4, capsize=2,
                        label=cls, color=plt.cm.tab10(c_i % 10), ls="-" if c_i < 10 else "--")
            ax.set_ylabel(label, fontsize=13)
    for ax in axes:
        ax.set_xticks(x, _layer_axis(names), fontsize=10)
        ax.set_xlabel("layer (P: particle block, C: class-attention block)", fontsize=12)
    axes[0].legend(fontsize=9, ncol=2)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return save_figure(fig, path, quiet=True)


def head_table(summary: dict, names: list[str], n_heads: int, path: Path, title: str) -> Path:
    """Layer x head table of the fraction of particles with max weight >= 0.5 (all classes pooled)."""
    plt = _plt()
    grid = np.full((len(names), n_heads), np.nan)
    for r, n in enumerate(names):
        for h in range(n_heads):
            v = summary["binary"].get("all", {}).get(n, {}).get("full", {}).get(str(h), {}).get("top1_ge_half")
            grid[r, h] = v["mean"] if v else np.nan
    fig, ax = plt.subplots(figsize=(1.1 * n_heads + 3, 0.7 * len(names) + 2))
    im = ax.imshow(grid, cmap="magma", vmin=0, vmax=1)
    for r in range(grid.shape[0]):
        for h in range(n_heads):
            if np.isfinite(grid[r, h]):
                ax.text(h, r, f"{grid[r, h]:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if grid[r, h] < 0.6 else "black")
    ax.set_xticks(range(n_heads), [f"h{h}" for h in range(n_heads)], fontsize=10)
    ax.set_yticks(range(len(names)), _layer_axis(names), fontsize=10)
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label("fraction with max weight >= 0.5", fontsize=11)
    cbar.ax.tick_params(labelsize=10)
    ax.set_title(title, fontsize=12)
    return save_figure(fig, path, quiet=True)


def max_weight_hist(summary: dict, names: list[str], path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 6))
    centres = 0.5 * (MAX_WEIGHT_BINS[1:] + MAX_WEIGHT_BINS[:-1])
    for n in names:
        h = np.asarray(summary["max_weight_hist"].get("all", {}).get(n, {}).get("full", {}).get("all", []), float)
        if h.size and h.sum() > 0:
            ax.step(centres, h / h.sum(), where="mid", label=_layer_axis([n])[0])
    ax.set_xlabel("max attention weight of a particle (per head)", fontsize=13)
    ax.set_ylabel("fraction of (particle, head) rows", fontsize=13)
    ax.set_yscale("log")
    ax.legend(fontsize=9, ncol=2)
    ax.set_title(title, fontsize=12)
    return save_figure(fig, path, quiet=True)


def ablation(summary: dict, names: list[str], path: Path, title: str) -> Path:
    """The model's weights vs softmax(QK^T + pad) (U removed) vs softmax(U + pad) (QK^T removed), all classes."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    x = np.arange(len(names))
    for variant, label, style in (("full", "full logits QK^T + U", "o-"), ("qk_only", "U removed (QK^T only)", "s--"),
                                  ("u_only", "QK^T removed (U only)", "^:")):
        for ax, stat in zip(axes, ("max_weight", "top1_ge_half")):
            vals = [summary["binary"].get("all", {}).get(n, {}).get(variant, {}).get("all", {}).get(stat) for n in names]
            ax.errorbar(x, [v["mean"] if v else np.nan for v in vals], yerr=[v["sem"] if v else np.nan for v in vals],
                        fmt=style, capsize=2, label=label)
    axes[0].set_ylabel("mean max weight", fontsize=13)
    axes[1].set_ylabel("fraction with max weight >= 0.5", fontsize=13)
    for ax in axes:
        ax.set_xticks(x, _layer_axis(names), fontsize=10)
        ax.set_xlabel("particle block", fontsize=12)
        ax.legend(fontsize=10)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return save_figure(fig, path, quiet=True)


def delta_r_profile(summary: dict, names: list[str], path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 6))
    centres = 0.5 * (DELTA_R_BINS[1:] + DELTA_R_BINS[:-1])
    for n in names:
        d = summary["delta_r"].get("all", {}).get(n)
        if not d:
            continue
        ratio = np.asarray(d["mean_weight"], float) / np.asarray(d["uniform_weight"], float)
        ax.plot(centres, ratio, marker="o", ms=3, label=_layer_axis([n])[0])
    ax.axhline(1, color="grey", lw=1, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\Delta R$ between particle and partner", fontsize=13)
    ax.set_ylabel("mean weight / uniform-attention weight", fontsize=13)
    ax.legend(fontsize=9, ncol=2)
    ax.set_title(title, fontsize=12)
    return save_figure(fig, path, quiet=True)


def partner_types(summary: dict, names: list[str], path: Path, title: str) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 5), squeeze=False)
    for ax, n in zip(axes[0], names):
        d = summary["partner_type"].get("all", {}).get(n)
        if not d:
            ax.axis("off")
            continue
        e = np.asarray(d["enrichment"], float)
        im = ax.imshow(np.log2(e), cmap="RdBu_r", vmin=-2, vmax=2)
        for a in range(e.shape[0]):
            for c in range(e.shape[1]):
                if np.isfinite(e[a, c]):
                    ax.text(c, a, f"{e[a, c]:.2f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(PARTICLE_TYPES)), PARTICLE_TYPES, rotation=45, ha="right", fontsize=9)
        ax.set_yticks(range(len(PARTICLE_TYPES)), PARTICLE_TYPES, fontsize=9)
        ax.set_xlabel("partner (key)", fontsize=11)
        ax.set_title(_layer_axis([n])[0], fontsize=12)
    axes[0, 0].set_ylabel("particle (query)", fontsize=11)
    cbar = fig.colorbar(im, ax=axes, shrink=0.8)
    cbar.set_label("log2(weight / uniform)", fontsize=11)
    cbar.ax.tick_params(labelsize=10)
    fig.suptitle(title, fontsize=13)
    return save_figure(fig, path, quiet=True)


def subjet_shares_plot(summary: dict, names: list[str], classes: list[str], path: Path, title: str) -> Path:
    """Attention share inside the particle's own subjet relative to uniform attention, and the fraction of
    strongest links inside a subjet, per layer and class (error bars: standard error over jets)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    x = np.arange(len(names))
    for c_i, cls in enumerate(classes):
        def get(stat):
            vals = [summary["binary"].get(cls, {}).get(n, {}).get("subjets", {}).get("all", {}).get(stat) for n in names]
            return np.asarray([v["mean"] if v else np.nan for v in vals]), np.asarray([v["sem"] if v else np.nan for v in vals])

        intra, e_intra = get("intra")
        inter, e_inter = get("inter")
        frac = intra / (intra + inter)  # share of the non-self attention that stays inside the subjet
        u_intra, _ = get("uniform_intra")
        u_inter, _ = get("uniform_inter")
        u_frac = u_intra / (u_intra + u_inter)
        err = np.hypot(e_intra * inter, e_inter * intra) / (intra + inter) ** 2
        line = axes[0].errorbar(x + 0.04 * c_i, frac, yerr=err, marker="o", ms=4, capsize=2, label=cls,
                                color=plt.cm.tab10(c_i % 10))
        axes[0].plot(x, u_frac, ls=":", color=line[0].get_color())
        link, e_link = get("link_intra")
        u_link, _ = get("uniform_link_intra")
        axes[1].errorbar(x + 0.04 * c_i, link, yerr=e_link, marker="o", ms=4, capsize=2, label=cls, color=line[0].get_color())
        axes[1].plot(x, u_link, ls=":", color=line[0].get_color())
    axes[0].set_ylabel("intra-subjet share of non-self attention", fontsize=12)
    axes[1].set_ylabel("strongest links inside a subjet", fontsize=12)
    for ax in axes:
        ax.set_xticks(x, _layer_axis(names), fontsize=10)
        ax.set_xlabel("particle block (dotted: uniform attention)", fontsize=12)
    axes[0].legend(fontsize=9, ncol=2)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return save_figure(fig, path, quiet=True)


def cls_ranks(summary: dict, names: list[str], classes: list[str], path: Path, title: str, max_rank: int = 40) -> Path:
    """Class-token attention to the particle of each pT rank (head mean), per class-attention block and class."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(7 * len(names), 5.5), squeeze=False)
    for ax, n in zip(axes[0], names):
        for c_i, cls in enumerate(classes):
            d = summary["cls_rank"].get(cls, {}).get(n)
            if d:
                ax.plot(np.arange(1, max_rank + 1), np.asarray(d["mean_weight"], float)[:max_rank], marker="o", ms=3,
                        label=cls, color=plt.cm.tab10(c_i % 10))
        ax.set_yscale("log")
        ax.set_xlabel("particle pT rank", fontsize=13)
        ax.set_ylabel("mean class-token attention", fontsize=13)
        ax.set_title(_layer_axis([n])[0], fontsize=12)
    axes[0, 0].legend(fontsize=9, ncol=2)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return save_figure(fig, path, quiet=True)
