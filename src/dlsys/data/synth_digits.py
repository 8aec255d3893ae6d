"""Synthetic MNIST-like digits from scikit-learn's bundled 8×8 handwritten digits (real handwriting).

Each sample: a source digit (from a train-only or test-only pool, so test accuracy measures
generalisation to unseen writers' strokes), upsampled, stroke width varied, fitted into a 20×20 box
and centred by centre of mass in 28×28 as MNIST is, then a random affine (rotation, shear, scale,
translation) and an elastic distortion. All of it is batched torch on the CPU: no per-pixel loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 28
BOX = 20
CHUNK = 2048


@dataclass(frozen=True)
class DigitStyle:
    rotation_deg: float = 12.0
    shear: float = 0.25
    scale: tuple[float, float] = (0.85, 1.15)
    shift_px: float = 1.5
    elastic_alpha: float = 2.0
    elastic_sigma: float = 3.0
    stroke: tuple[float, float] = (-0.8, 0.8)
    ink_ramp: tuple[float, float] = (0.15, 0.65)  # grey levels mapped to 0 and 1: crisper strokes


def source_split(test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's 1,797 digits split per class into disjoint train/test source pools.

    Returns (train_images, train_labels, test_images, test_labels) as float32 in [0, 1], 8×8.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for k in range(10):
        idx = np.flatnonzero(labels == k)
        rng.shuffle(idx)
        test_mask[idx[: max(1, int(round(test_fraction * len(idx))))]] = True
    return images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask]


def balanced_draw(labels: np.ndarray, n: int, rng: np.random.Generator,
                  classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pick n source indices, classes balanced (cycled, then shuffled); returns (indices, labels)."""
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    want = np.resize(classes, n)
    rng.shuffle(want)
    idx = np.empty(n, dtype=np.int64)
    for k in classes:
        slots = np.flatnonzero(want == k)
        pool = np.flatnonzero(labels == k)
        idx[slots] = rng.choice(pool, size=len(slots), replace=True)
    return idx, want.astype(np.int64)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W)."""
    k = _gaussian_kernel(sigma)
    c = field.shape[1]
    kx = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    r = k.numel() // 2
    field = F.conv2d(F.pad(field, (r, r, 0, 0), mode="reflect"), kx, groups=c)
    return F.conv2d(F.pad(field, (0, 0, r, r), mode="reflect"), ky, groups=c)


def vary_stroke(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Grey-level dilation (amount > 0) or erosion (< 0) by up to ~`|amount|` pixels, fractional."""
    out = x
    a = amount.view(-1, 1, 1, 1)
    for step in range(int(math.ceil(float(amount.abs().max())) if len(amount) else 0)):
        dil = F.max_pool2d(out, 3, 1, 1)
        ero = -F.max_pool2d(-out, 3, 1, 1)
        frac_pos = (a - step).clamp(0, 1)
        frac_neg = (-a - step).clamp(0, 1)
        out = out + frac_pos * (dil - out) + frac_neg * (ero - out)
    return out


def centre_in_canvas(small: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste BOX×BOX digits in the middle of a SIZE×SIZE canvas; return canvas and centre-of-mass offsets
    (pixels, (N, 2) as x, y) that would move each digit's centre of mass to the canvas centre."""
    pad = (SIZE - BOX) // 2
    canvas = F.pad(small, (pad, pad, pad, pad))
    mass = canvas.sum(dim=(1, 2, 3)).clamp_min(1e-6)
    coords = torch.arange(SIZE, dtype=torch.float32) + 0.5
    cx = (canvas.sum(dim=2).squeeze(1) * coords).sum(dim=1) / mass
    cy = (canvas.sum(dim=3).squeeze(1) * coords).sum(dim=1) / mass
    offset = torch.stack([SIZE / 2 - cx, SIZE / 2 - cy], dim=1)
    return canvas, offset


def affine_elastic(canvas: torch.Tensor, angle_deg: torch.Tensor, shear: torch.Tensor, scale: torch.Tensor,
                   shift_px: torch.Tensor, alpha: float, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Warp each image: content rotated counter-clockwise by `angle_deg`, sheared, scaled, shifted by
    `shift_px` (x, y pixels), then elastically displaced (smooth random field, `alpha` pixels)."""
    n = canvas.shape[0]
    t = torch.deg2rad(angle_deg)
    cos, sin = torch.cos(t), torch.sin(t)
    # Forward map of content in (x right, y down) coordinates: scale·shear then rotate (CCW on screen).
    rot = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    shr = torch.stack([torch.stack([torch.ones_like(shear), shear], -1),
                       torch.stack([torch.zeros_like(shear), torch.ones_like(shear)], -1)], -2)
    fwd = rot @ shr * scale.view(-1, 1, 1)
    inv = torch.linalg.inv(fwd)
    shift = shift_px * (2.0 / SIZE)  # pixels → normalised coordinates
    theta = torch.cat([inv, (-inv @ shift.unsqueeze(-1))], dim=2)
    grid = F.affine_grid(theta, (n, 1, SIZE, SIZE), align_corners=False)
    if alpha > 0:
        noise = torch.rand((n, 2, SIZE, SIZE), generator=gen) * 2 - 1
        disp = _smooth(noise, sigma)
        disp = disp / disp.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        grid = grid + (alpha * 2.0 / SIZE) * disp.permute(0, 2, 3, 1)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def render_digits(sources: np.ndarray, style: DigitStyle, seed: int) -> np.ndarray:
    """Render 8×8 sources (N, 8, 8) in [0, 1] to uint8 (N, 28, 28) MNIST-style digits."""
    gen = torch.Generator().manual_seed(seed)
    out = np.empty((len(sources), SIZE, SIZE), dtype=np.uint8)
    for lo in range(0, len(sources), CHUNK):
        src = torch.from_numpy(np.ascontiguousarray(sources[lo:lo + CHUNK])).unsqueeze(1)
        n = src.shape[0]
        u = lambda a, b: a + (b - a) * torch.rand(n, generator=gen)  # noqa: E731
        small = F.interpolate(src, size=(BOX, BOX), mode="bicubic", align_corners=False).clamp(0, 1)
        small = vary_stroke(small, u(*style.stroke) * BOX / 8 / 2)
        lo_ink, hi_ink = style.ink_ramp
        small = ((small - lo_ink) / (hi_ink - lo_ink)).clamp(0, 1)
        canvas, com = centre_in_canvas(small)
        shift = com + torch.stack([u(-style.shift_px, style.shift_px), u(-style.shift_px, style.shift_px)], 1)
        warped = affine_elastic(canvas, u(-style.rotation_deg, style.rotation_deg), u(-style.shear, style.shear),
                                u(*style.scale), shift, style.elastic_alpha, style.elastic_sigma, gen)
        out[lo:lo + n] = (warped.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return out


def make_digit_set(n: int, pool_images: np.ndarray, pool_labels: np.ndarray, style: DigitStyle, seed: int,
                   classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx, labels = balanced_draw(pool_labels, n, rng, classes)
    return render_digits(pool_images[idx], style, seed), labels
