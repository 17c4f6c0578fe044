"""Summary of a TrackML-format directory (ours or real): hits, pixel hits, hits per particle, reconstructability.

A particle is *reconstructable* when its hits lie on >= 3 distinct pixel layers (distinct
(volume_id, layer_id) among volumes 7, 8, 9), the definition HEPT's tracking preprocessing applies to
pixel hits; the fraction is quoted for particles with pT > 0.9 GeV (the tracking metrics' cut).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from partx.datagen.trackml import schema
from partx.datagen.trackml.io import list_events, read_event

PT_CUT = 0.9
MIN_PIXEL_LAYERS = 3


@dataclass
class Summary:
    events: list[int] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    pixel_hits: list[int] = field(default_factory=list)
    noise_hits: list[int] = field(default_factory=list)
    hits_per_particle: list[np.ndarray] = field(default_factory=list)  # per event: nhits of particles with >= 1 hit
    n_pt: int = 0  # particles with pT > PT_CUT
    n_pt_reco: int = 0  # of which reconstructable

    def table(self) -> str:
        hpp = np.concatenate(self.hits_per_particle) if self.hits_per_particle else np.zeros(0)
        frac = self.n_pt_reco / self.n_pt if self.n_pt else float("nan")
        lines = [
            f"events: {len(self.events)}",
            f"hits / event: {np.mean(self.hits):.0f} (pixel {np.mean(self.pixel_hits):.0f}, "
            f"noise {np.mean(self.noise_hits):.0f})",
            f"hits per particle (particles with hits): mean {hpp.mean() if hpp.size else float('nan'):.2f}, "
            f"median {np.median(hpp) if hpp.size else float('nan'):.0f}",
            f"pT > {PT_CUT} GeV particles reconstructable (>= {MIN_PIXEL_LAYERS} pixel layers): "
            f"{self.n_pt_reco} / {self.n_pt} = {frac:.3f}",
        ]
        return "\n".join(lines)


def reconstructable(hits: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """particle_id -> number of distinct pixel layers hit (particles with at least one pixel hit)."""
    t = truth[["hit_id", "particle_id"]].merge(hits[["hit_id", "volume_id", "layer_id"]], on="hit_id")
    t = t[(t["particle_id"] != schema.NOISE_ID) & t["volume_id"].isin(schema.PIXEL_VOLUMES)]
    return t.drop_duplicates(["particle_id", "volume_id", "layer_id"]).groupby("particle_id").size()


def summarise(directory: str | os.PathLike, max_events: int | None = None) -> Summary:
    """Read the events of ``directory`` (all, or the first ``max_events``) and summarise them."""
    ids = list_events(directory, parts=("hits", "particles", "truth"))
    if max_events is not None:
        ids = ids[:max_events]
    s = Summary()
    for e in ids:
        ev = read_event(directory, e, parts=("hits", "particles", "truth"))
        h, p, t = ev["hits"], ev["particles"], ev["truth"]
        s.events.append(e)
        s.hits.append(len(h))
        s.pixel_hits.append(int(h["volume_id"].isin(schema.PIXEL_VOLUMES).sum()))
        s.noise_hits.append(int((t["particle_id"] == schema.NOISE_ID).sum()))
        counts = t.loc[t["particle_id"] != schema.NOISE_ID, "particle_id"].value_counts()
        s.hits_per_particle.append(counts.to_numpy())
        layers = reconstructable(h, t)
        pt = np.hypot(p["px"].to_numpy(np.float64), p["py"].to_numpy(np.float64))
        high = p.loc[pt > PT_CUT, "particle_id"]
        s.n_pt += len(high)
        s.n_pt_reco += int((layers.reindex(high, fill_value=0) >= MIN_PIXEL_LAYERS).sum())
    return s


def plot_summary(s: Summary, path: str | os.PathLike) -> Path:
    """Hits-per-particle histogram and per-event hit counts; returns the written path."""
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"wspace": 0.3})
    hpp = np.concatenate(s.hits_per_particle) if s.hits_per_particle else np.zeros(0)
    axes[0].hist(hpp, bins=np.arange(0.5, max(31, hpp.max() + 1.5) if hpp.size else 31), histtype="step", lw=2)
    axes[0].set_xlabel("hits per particle")
    axes[0].set_ylabel("particles")
    axes[0].set_yscale("log")
    x = np.asarray(s.events)
    axes[1].plot(x, np.asarray(s.hits) / 1e3, "o-", label="all hits")
    axes[1].plot(x, np.asarray(s.pixel_hits) / 1e3, "s-", label="pixel hits (vol 7, 8, 9)")
    axes[1].set_ylim(0, max(s.hits) / 1e3 * 1.3 if s.hits else 1)
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_xlabel("event id")
    axes[1].set_ylabel("thousand hits / event")
    axes[1].legend()
    return save_figure(fig, path, quiet=True)
