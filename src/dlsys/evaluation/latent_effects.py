"""Find which latent dimension encodes a known factor (here: rotation) by rank correlation.

`principal_axis_angle` estimates each image's orientation from its second-order pixel moments when no
true angle is known (real data); `latent_effect` reports the latent dimension whose mean has the
largest |Spearman ρ| with the angle.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def spearman_rho(a, b) -> float:
    """Spearman's ρ: Pearson correlation of the (average-tie) ranks. NaN if either input is constant."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"spearman_rho needs two equally long vectors of >= 2 values, got {a.shape} and {b.shape}")
    ra, rb = rankdata(a) - (a.size + 1) / 2.0, rankdata(b) - (b.size + 1) / 2.0
    denom = np.sqrt(np.sum(ra**2) * np.sum(rb**2))
    return float(np.sum(ra * rb) / denom) if denom > 0 else float("nan")


def principal_axis_angle(images) -> np.ndarray:
    """Orientation of each image's principal axis, in degrees counter-clockwise from the horizontal
    (image rows grow downwards, so y is flipped), in (−90, 90]. images: (N, H, W) non-negative."""
    img = np.asarray(images, dtype=np.float64)
    if img.ndim == 2:
        img = img[None]
    n, h, w = img.shape
    mass = img.sum(axis=(1, 2))
    if np.any(mass <= 0):
        raise ValueError("principal_axis_angle: an image has no ink (all pixels zero)")
    x = np.arange(w, dtype=np.float64)[None, None, :]
    y = -np.arange(h, dtype=np.float64)[None, :, None]  # y up
    cx = (img * x).sum(axis=(1, 2)) / mass
    cy = (img * y).sum(axis=(1, 2)) / mass
    dx = x - cx[:, None, None]
    dy = y - cy[:, None, None]
    mu20 = (img * dx * dx).sum(axis=(1, 2))
    mu02 = (img * dy * dy).sum(axis=(1, 2))
    mu11 = (img * dx * dy).sum(axis=(1, 2))
    theta = 0.5 * np.degrees(np.arctan2(2.0 * mu11, mu20 - mu02))
    return np.where(theta <= -90.0, theta + 180.0, theta)


def axis_tilt(images) -> np.ndarray:
    """Rotation estimate for digits that are upright when unrotated: the principal axis's tilt from the
    vertical, degrees counter-clockwise, in (−90, 90]. (An axis is only defined modulo 180°, so
    rotations of about ±90° meet at the wrap-around.)"""
    tilt = principal_axis_angle(images) - 90.0
    return np.where(tilt <= -90.0, tilt + 180.0, tilt)


def _wrap180(deg: np.ndarray) -> np.ndarray:
    return (deg + 180.0) % 360.0 - 180.0


def latent_effect(latent_means, angles) -> dict:
    """ρ of every latent dimension's mean with the angle, and the dimension with the largest |ρ|."""
    mu = np.asarray(latent_means, dtype=np.float64)
    angles = np.asarray(angles, dtype=np.float64).ravel()
    if mu.ndim != 2 or len(mu) != len(angles):
        raise ValueError(f"latent means {mu.shape} and angles {angles.shape} do not match")
    rhos = [spearman_rho(mu[:, k], angles) for k in range(mu.shape[1])]
    finite = [k for k, r in enumerate(rhos) if np.isfinite(r)]
    if not finite:
        return {"best_dim": None, "rho": float("nan"), "abs_rho": float("nan"), "rho_per_dim": rhos}
    best = max(finite, key=lambda k: abs(rhos[k]))
    return {"best_dim": best, "rho": rhos[best], "abs_rho": abs(rhos[best]), "rho_per_dim": rhos}


def latent_plane_effect(latent_means, angles, n_cuts: int = 72) -> dict:
    """A factor that closes on itself (rotation) tends to be encoded as a circle in a plane of two
    latent dimensions, where no single coordinate is monotonic. For every pair (i, j): the polar angle
    of the centred means, cut open at the best of `n_cuts` places, rank-correlated with the angle.
    Returns the pair with the largest |ρ| (a diagnostic beside `latent_effect`, not a replacement)."""
    mu = np.asarray(latent_means, dtype=np.float64)
    mu = mu - mu.mean(axis=0)
    best = {"dims": None, "rho": float("nan"), "abs_rho": float("nan"), "cut_deg": None}
    for i in range(mu.shape[1]):
        for j in range(i + 1, mu.shape[1]):
            psi = np.degrees(np.arctan2(mu[:, j], mu[:, i]))
            for cut in np.arange(n_cuts) * (360.0 / n_cuts) - 180.0:
                rho = spearman_rho(_wrap180(psi - cut), angles)
                if np.isfinite(rho) and (best["dims"] is None or abs(rho) > best["abs_rho"]):
                    best = {"dims": [i, j], "rho": rho, "abs_rho": abs(rho), "cut_deg": float(cut)}
    return best
