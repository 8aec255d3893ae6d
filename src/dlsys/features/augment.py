"""CIFAR augmentations and the rotation pretext transforms, pixel-exact, batched, on tensors.

Images are NCHW float tensors in [0, 1] (`to_unit`); the network sees them rescaled to [-1, 1]
(`to_signed`). All transforms work on whole batches on whatever device the tensor lives on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

AUGMENT_NAMES = ("original", "brighter", "darker", "mirrored")
PRETEXT_NAMES = ("upright", "upside_down", "rot90_ccw")


def to_unit(x: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC (as the CIFAR reader returns) → float32 NCHW in [0, 1] on `device`."""
    t = torch.as_tensor(x, device=device)
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {t.dtype} {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] → [-1, 1], the network's input range."""
    return x * 2.0 - 1.0


def brighten(x: torch.Tensor, factor: float) -> torch.Tensor:
    """min(factor·x, 1)."""
    return torch.clamp(x * factor, max=1.0)


def darken(x: torch.Tensor, factor: float) -> torch.Tensor:
    """factor·x (factor < 1 keeps [0, 1])."""
    return x * factor


def mirror(x: torch.Tensor) -> torch.Tensor:
    """Horizontal mirror: left ↔ right (the width axis, last in NCHW)."""
    return torch.flip(x, dims=[-1])


View = Callable[[torch.Tensor], torch.Tensor]


def augment_views(bright: float, dark: float) -> dict[str, View]:
    """The augmentations by name (AUGMENT_NAMES), each a batch transform on [0, 1] images."""
    return {"original": lambda x: x, "brighter": lambda x: brighten(x, bright),
            "darker": lambda x: darken(x, dark), "mirrored": mirror}


def pick_views(names: Sequence[str], bright: float, dark: float) -> list[View]:
    """The named augmentations, in the order given; refuses unknown or repeated names and an empty list."""
    views = augment_views(bright, dark)
    unknown = [n for n in names if n not in views]
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if not names or unknown or repeated:
        problem = (f"unknown {unknown}" if unknown else f"repeated {repeated}" if repeated else "none given")
        raise ValueError(f"views {list(names)}: {problem}; expected distinct names from {list(AUGMENT_NAMES)}")
    return [views[n] for n in names]


def augment_set(x: torch.Tensor, y: torch.Tensor, bright: float, dark: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[originals; brighter; darker; mirrored] (4·N images, in AUGMENT_NAMES order) with the same labels."""
    xs = torch.cat([view(x) for view in pick_views(AUGMENT_NAMES, bright, dark)])
    return xs, y.repeat(len(AUGMENT_NAMES))


def upside_down(x: torch.Tensor) -> torch.Tensor:
    """Flip top ↔ bottom (the height axis)."""
    return torch.flip(x, dims=[-2])


def rot90_ccw(x: torch.Tensor) -> torch.Tensor:
    """Rotate 90° counter-clockwise as displayed (row 0 at the top): the top-right corner goes top-left."""
    return torch.rot90(x, k=1, dims=[-2, -1])


def rotation_pretext(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[x; upside-down x; 90°-CCW x] with pretext labels 0, 1, 2 (N each); the class labels are ignored."""
    n = len(x)
    xs = torch.cat([x, upside_down(x), rot90_ccw(x)])
    labels = torch.arange(len(PRETEXT_NAMES), device=x.device).repeat_interleave(n)
    return xs, labels


def validation_split(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded hold-out: (train indices, validation indices), disjoint, together 0..n-1."""
    if not 0 < n_val < n:
        raise ValueError(f"validation count {n_val} must be between 1 and {n - 1}")
    order = np.random.default_rng(np.random.SeedSequence([seed, n, n_val])).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def labelled_split(n: int, n_labelled: int) -> tuple[np.ndarray, np.ndarray]:
    """The SSL split: (pretext indices = the first n - n_labelled, labelled = the last n_labelled)."""
    if not 0 < n_labelled < n:
        raise ValueError(f"labelled count {n_labelled} must be between 1 and {n - 1}")
    return np.arange(n - n_labelled), np.arange(n - n_labelled, n)
