"""Statistics shared by the seeded comparisons (partx.studies.tracking_compare, partx.studies.variant_accuracy).

* ``summary``: n, mean, standard deviation (ddof=1) and standard error of the mean (std / sqrt(n)) of
  one model's per-seed values;
* ``paired_difference``: the per-seed differences of two models trained with the same seeds, their mean,
  std and standard error (std / sqrt(n));
* ``paired_test_se``: the test-set part of the error of an accuracy difference measured on the SAME
  test jets: with c_A(j), c_B(j) the seed-averaged correctness of jet j, the standard error of the mean
  over jets of c_A(j) - c_B(j) (for one seed each this is the McNemar-style paired binomial error,
  sqrt(discordant fraction - diff^2) / sqrt(N));
* ``distinguishable`` / ``verdict``: a difference counts when it exceeds ``k`` (2) standard errors;
* ``design_se`` / ``seeds_needed`` / ``test_jets_needed``: the sizing formula of a protocol, before
  anything is trained: SE^2 = 2 sigma^2 / S + 2 p (1 - p) / N for two models with per-seed accuracy
  std sigma, S seeds each and N shared test jets (2 p (1 - p) bounds the paired jet term from above: it
  is the value for independent errors; models that agree on most jets do better).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

#: a difference is "distinguishable" above this many standard errors
K_SIGMA = 2.0


def summary(values: Iterable[float | None]) -> dict:
    """{n, mean, std, se} of the finite values (std ddof=1; std and se are NaN below two values)."""
    v = np.array([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    n = int(len(v))
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    return {"n": n, "mean": float(v.mean()) if n else math.nan, "std": std,
            "se": std / math.sqrt(n) if n > 1 else math.nan}


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
    """Mean of a[s] - b[s] over the seeds s both have: {n, mean, std, se, seeds}."""
    seeds = sorted(set(a) & set(b))
    out = summary([a[s] - b[s] for s in seeds])
    out["seeds"] = seeds
    return out


def paired_test_se(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Test-set standard error of acc(A) - acc(B) on the same N jets.

    Args:
        correct_a: (S_a, N) or (N,) 0/1 correctness of model A's runs on the shared test jets.
        correct_b: (S_b, N) or (N,) the same for model B, jets in the same order.
    """
    a = np.atleast_2d(np.asarray(correct_a, dtype=float)).mean(0)
    b = np.atleast_2d(np.asarray(correct_b, dtype=float)).mean(0)
    if a.shape != b.shape:
        raise ValueError(f"paired test error: {a.shape[0]} vs {b.shape[0]} test jets (not the same test set)")
    if len(a) < 2:
        return math.nan
    return float(np.std(a - b, ddof=1) / math.sqrt(len(a)))


def combined_se(*parts: float) -> float:
    """sqrt(sum of squares) of independent error components (NaN if any is NaN)."""
    return math.sqrt(sum(p * p for p in parts))


def distinguishable(diff: float, se: float, k: float = K_SIGMA) -> bool:
    """|diff| > k * se, with a finite se."""
    return math.isfinite(se) and math.isfinite(diff) and abs(diff) > k * se


def verdict(diff: float, se: float, k: float = K_SIGMA) -> str:
    """"higher (> 2 SE)", "lower (> 2 SE)" or "not distinguishable"."""
    if not distinguishable(diff, se, k):
        return "not distinguishable"
    return f"{'higher' if diff > 0 else 'lower'} (> {k:g} SE)"


def design_se(seed_std: float, n_seeds: int, n_test: int, p: float = 0.5) -> dict:
    """Expected SE of an accuracy difference of two models (see the module doc): {seed, test, total}."""
    seed = math.sqrt(2.0 * seed_std**2 / n_seeds)
    test = math.sqrt(2.0 * p * (1.0 - p) / n_test)
    return {"seed": seed, "test": test, "total": combined_se(seed, test)}


def seeds_needed(diff_std: float, test_se: float, target: float) -> int | None:
    """Seeds S with sqrt(diff_std^2 / S + test_se^2) <= target; None if the test term alone exceeds it.

    ``diff_std``: the std over seeds of the paired difference (sqrt(2) sigma for independent models)."""
    room = target**2 - test_se**2
    if room <= 0:
        return None
    return max(2, math.ceil(diff_std**2 / room))


def test_jets_needed(seed_se: float, target: float, p: float = 0.5) -> int | None:
    """Shared test jets N with sqrt(seed_se^2 + 2 p (1 - p) / N) <= target; None if the seed term alone exceeds it."""
    room = target**2 - seed_se**2
    if room <= 0:
        return None
    return math.ceil(2.0 * p * (1.0 - p) / room)
