"""A PUPPI-like per-particle weight for neutral particles (the jet-level baseline of partx.metrics.pileup_jets).

PUPPI: D. Bertolini, P. Harris, M. Low, N. Tran, "Pileup Per Particle Identification", JHEP 10 (2014) 059,
arXiv:1407.6013. For each particle i, a local shape built from the charged particles of the leading vertex
(LV) around it:

    alpha_i = log sum_{j in charged LV, j != i, R_min < dR_ij < R_0} (pT_j / dR_ij)^2        (R_0 = 0.3)

(-inf when no such neighbour). The alpha of the charged *pileup* particles of the same event gives the
pileup reference: its median alpha_PU and its RMS about the median sigma_PU. Then

    chi2_i = Theta(alpha_i - alpha_PU) (alpha_i - alpha_PU)^2 / sigma_PU^2,   w_i = F_chi2,ndf=1(chi2_i)

(F the chi-square CDF with one degree of freedom: w = erf(sqrt(chi2 / 2))), and the neutral's four-momentum
is scaled by w_i. Charged particles keep CHS's 0 / 1 from the vertex association.

Simplifications (partx's, documented in docs/pileup_models.md): one definition everywhere (the paper
switches to all-particle alpha outside the tracker, |eta| > 2.5); no weight cut (w_cut) and no cut on the
weighted pT; the reference (median, RMS) is taken per event from all its charged pileup particles, not per
eta region; R_min = 0.02 (partx's choice) only keeps near-collinear pairs from dominating the sum; an event
with fewer than 2 charged pileup particles of finite alpha has no reference and keeps every neutral (w = 1).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

R0, R_MIN = 0.3, 0.02


def _delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    """(n1, n2) matrix of dR."""
    dphi = np.mod(phi1[:, None] - phi2[None, :] + np.pi, 2 * np.pi) - np.pi
    return np.hypot(eta1[:, None] - eta2[None, :], dphi)


def puppi_alpha(eta: np.ndarray, phi: np.ndarray, which: np.ndarray, ref: np.ndarray, pt: np.ndarray,
                r0: float = R0, r_min: float = R_MIN, chunk: int = 4096) -> np.ndarray:
    """alpha of the particles ``which`` (bool (n,)) with neighbours ``ref`` (bool (n,), charged LV).

    Returns (n,) float, NaN for particles not in ``which``, -inf where no neighbour lies in the cone.
    """
    out = np.full(len(eta), np.nan)
    idx, ridx = np.flatnonzero(which), np.flatnonzero(ref)
    if len(ridx) == 0:
        out[idx] = -np.inf
        return out
    for s in range(0, len(idx), chunk):  # bounded memory: chunk x n_ref distances at a time
        i = idx[s:s + chunk]
        dr = _delta_r(eta[i], phi[i], eta[ridx], phi[ridx])
        ok = (dr > r_min) & (dr < r0) & (i[:, None] != ridx[None, :])
        xi = np.where(ok, (pt[ridx][None, :] / np.where(ok, dr, 1.0)) ** 2, 0.0).sum(1)
        with np.errstate(divide="ignore"):
            out[i] = np.log(xi)
    return out


def puppi_weights(eta: np.ndarray, phi: np.ndarray, pt: np.ndarray, charged: np.ndarray, is_lv: np.ndarray,
                  r0: float = R0, r_min: float = R_MIN) -> np.ndarray:
    """Per-particle weights of one event (n,): neutrals the PUPPI-like w, charged particles ``is_lv`` (CHS).

    Args:
        eta, phi, pt: (n,) kinematics; charged: (n,) bool; is_lv: (n,) bool, used for charged particles only
            (their vertex association; neutrals' truth is never read).
    """
    charged, is_lv = np.asarray(charged, bool), np.asarray(is_lv, bool)
    ref = charged & is_lv
    alpha = puppi_alpha(eta, phi, ~charged | (charged & ~is_lv), ref, pt, r0, r_min)
    pu = alpha[charged & ~is_lv]
    pu = pu[np.isfinite(pu)]
    w = np.where(charged, is_lv.astype(float), 1.0)
    if len(pu) < 2:
        return w
    med = float(np.median(pu))
    sigma = float(np.sqrt(np.mean((pu - med) ** 2))) or 1.0
    a = alpha[~charged]
    chi2 = np.where(np.isfinite(a) & (a > med), (np.nan_to_num(a, neginf=med) - med) ** 2 / sigma**2, 0.0)
    w[~charged] = erf(np.sqrt(chi2 / 2.0))
    return w
