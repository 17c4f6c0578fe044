"""Model inputs for benchmarking: synthetic jets or real files, at any length N.

weaver's ``DataConfig`` fixes the input length (128 for JetClass). The benchmark overrides it: the
input *names*, groups and feature counts come from the data config, the length N from the caller.

Synthetic jets (``synthetic_inputs``) are physically shaped, not random noise: constituents of a
~700 GeV jet with exponentially falling pT (sorted, as weaver expects), massless 4-vectors spread by
~0.1 in (deta, dphi) around the axis, so ParT's pairwise features (ln kT, ln z, ln dR, ln m^2) are
finite. The per-particle feature inputs are standard-normal (what standardised features look like);
their values do not change the cost of any model here.

``fill`` chooses how many particles are real:
  * ``"full"`` (default): all N particles real, no padding. The cost measured is the cost at length N,
    which is what a scaling study needs: the ParT skeleton trims trailing padding at inference
    (weaver's ``SequenceTrimmer``), so padded inputs would shrink the effective length.
  * a fraction ``f`` in (0, 1]: per-jet real multiplicity ~ Normal(f N, 0.15 f N) clipped to [1, N],
    real particles first, zero padding after (mask 0). JetClass jets have ~40 real particles of 128
    on average (f ~ 0.4). With padding the ParT family runs on max(real) per batch after trimming.

``file_inputs`` reads real jets through weaver's own dataset code with the data config's lengths
rewritten to N (keep-first truncation / padding as weaver does).
"""

from __future__ import annotations

import copy
import glob as _glob
import os
import tempfile

import numpy as np
import torch

#: weaver input group -> role in the JetClass network files' forward(points, features, lorentz_vectors, mask)
ROLE_ORDER = ("points", "features", "vectors", "mask")


def parse_fill(value) -> str | float:
    """'full' or a float fraction in (0, 1]; raises ValueError otherwise."""
    if isinstance(value, str) and value.strip().lower() in ("full", "all", "1", "1.0"):
        return "full"
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"--fill must be 'full' or a fraction in (0, 1], got {value!r}") from None
    if not 0 < f <= 1:
        raise ValueError(f"--fill must be 'full' or a fraction in (0, 1], got {value!r}")
    return "full" if f == 1 else f


def input_dims(data_config) -> dict[str, int]:
    """Number of variables (channels) of each input group of a weaver DataConfig, in input order."""
    return {name: len(data_config.input_dicts[name]) for name in data_config.input_names}


def _group_role(name: str, n_vars: int) -> str:
    low = name.lower()
    if "mask" in low:
        return "mask"
    if "vector" in low or "lorentz" in low:
        return "vectors"
    if "point" in low:
        return "points"
    return "features"


def synthetic_inputs(data_config, length: int, batch_size: int, fill="full", seed: int = 0,
                     device="cpu") -> dict[str, torch.Tensor]:
    """Synthetic inputs named as the data config's input groups, each (batch, n_vars, length) float32."""
    if length < 1 or batch_size < 1:
        raise ValueError(f"length and batch size must be >= 1, got N={length}, batch={batch_size}")
    fill = parse_fill(fill)
    rng = np.random.default_rng(seed)
    B, N = batch_size, length
    if fill == "full":
        n_real = np.full(B, N)
    else:
        n_real = np.clip(np.rint(rng.normal(fill * N, 0.15 * fill * N, B)), 1, N).astype(int)
    mask = (np.arange(N)[None, :] < n_real[:, None]).astype(np.float32)  # (B, N)

    # kinematics: pT fractions exponentially falling, sorted descending; massless particles
    jet_pt = rng.uniform(500, 1000, (B, 1))
    frac = np.sort(rng.exponential(1.0, (B, N)), axis=1)[:, ::-1] + 1e-3
    frac = frac * mask
    frac = frac / frac.sum(1, keepdims=True)
    pt = jet_pt * frac + 1e-3
    jet_eta = rng.uniform(-2, 2, (B, 1))
    deta = rng.normal(0, 0.1, (B, N))
    dphi = rng.normal(0, 0.1, (B, N))
    eta, phi = jet_eta + deta, dphi
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2)
    vectors = np.stack([px, py, pz, energy], 1) * mask[:, None]
    points = np.stack([deta, dphi], 1) * mask[:, None]

    out = {}
    for name, n_vars in input_dims(data_config).items():
        role = _group_role(name, n_vars)
        if role == "mask":
            arr = np.repeat(mask[:, None], n_vars, 1)
        elif role == "vectors" and n_vars == 4:
            arr = vectors
        elif role == "points" and n_vars == 2:
            arr = points
        else:
            arr = rng.standard_normal((B, n_vars, N)).astype(np.float32) * mask[:, None]
        out[name] = torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32, device=device)
    return out


def with_length(data_config, length: int):
    """A deep copy of a weaver DataConfig whose every input group has length ``length``."""
    dc = copy.deepcopy(data_config)
    for name in dc.input_names:
        shape = list(dc.input_shapes[name])
        shape[-1] = length
        dc.input_shapes[name] = tuple(shape)
    return dc


def file_inputs(data_config_path: str, pattern: str, length: int, batch_size: int,
                device="cpu") -> dict[str, torch.Tensor]:
    """One batch of real jets from ROOT/parquet files matching ``pattern``, padded/truncated to ``length``.

    Uses weaver's ``SimpleIterDataset`` with a temporary copy of the YAML whose input lengths are N, so
    preprocessing (standardisation, padding mode) is exactly weaver's.
    """
    import yaml
    from weaver.utils.dataset import SimpleIterDataset

    files = sorted(_glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"--data-files {pattern!r} matches no file")
    with open(data_config_path) as f:
        cfg = yaml.safe_load(f)
    for group in cfg["inputs"].values():
        group["length"] = int(length)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        ds = SimpleIterDataset({"bench": files}, path, for_training=False, load_range_and_fraction=None,
                               fetch_by_files=True, fetch_step=len(files), in_memory=False, async_load=False, name="bench")
        ds_cfg = ds.config
        cols = {name: [] for name in ds_cfg.input_names}
        n = 0
        for X, _, _ in ds:
            for name in ds_cfg.input_names:
                cols[name].append(np.asarray(X[name] if name in X else X["_" + name]))
            n += 1
            if n >= batch_size:
                break
    if n == 0:
        raise RuntimeError(f"no jets read from {pattern!r}")
    out = {}
    for name, parts in cols.items():
        arr = np.stack(parts)
        if n < batch_size:  # repeat jets to fill the batch
            arr = np.concatenate([arr] * (batch_size // n + 1))[:batch_size]
        out[name] = torch.as_tensor(arr, dtype=torch.float32, device=device)
    return out


def as_forward_args(model_inputs: dict[str, torch.Tensor], input_names) -> tuple[torch.Tensor, ...]:
    """Positional forward arguments in the data config's input order (what weaver passes)."""
    return tuple(model_inputs[name] for name in input_names)
