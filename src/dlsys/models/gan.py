"""Fully-connected GANs: the conditional GAN (noise ⊕ one-hot) and the centre-patch imputer.

Images are flat 784-vectors in [-1, 1] (tanh output). Discriminators return logits; the logistic
output is `torch.sigmoid(logits)` (losses use the numerically stable BCE-with-logits).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

N_PIXELS = 28 * 28
SIDE = 28


def _mlp(sizes: Sequence[int], act: nn.Module, dropout: float = 0.0) -> list[nn.Module]:
    """Linear layers with `act` (and dropout) after each one but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act)
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    """[noise ⊕ condition] → hidden (ReLU) → 784 (tanh). For the cGAN: 110 → 200 → 400 → 784."""

    def __init__(self, noise_dim: int = 100, cond_dim: int = 10, hidden: Sequence[int] = (200, 400),
                 n_pixels: int = N_PIXELS):
        super().__init__()
        self.noise_dim, self.cond_dim = noise_dim, cond_dim
        self.net = nn.Sequential(*_mlp([noise_dim + cond_dim, *hidden, n_pixels], nn.ReLU()), nn.Tanh())

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([noise, cond], dim=1))


class Discriminator(nn.Module):
    """[784 pixels ⊕ condition] → hidden (LeakyReLU + dropout) → 1 logit. cGAN: 794 → 400 → 200 → 100 → 1.
    With cond_dim = 0 it sees images only (the imputer's discriminator)."""

    def __init__(self, cond_dim: int = 10, hidden: Sequence[int] = (400, 200, 100), dropout: float = 0.3,
                 leaky_slope: float = 0.2, n_pixels: int = N_PIXELS):
        super().__init__()
        self.cond_dim = cond_dim
        self.net = nn.Sequential(*_mlp([n_pixels + cond_dim, *hidden, 1], nn.LeakyReLU(leaky_slope), dropout))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        if self.cond_dim:
            x = torch.cat([x, cond], dim=1)
        return self.net(x).squeeze(1)


def one_hot(labels: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    return F.one_hot(labels.long(), n_classes).float()


def balanced_labels(n: int, n_classes: int = 10, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """n labels, every class present n // n_classes or n // n_classes + 1 times, in random order."""
    labels = torch.arange(n) % n_classes
    # The leftover n % n_classes slots go to randomly chosen classes, not always the lowest ones.
    rest = n % n_classes
    if rest:
        labels[n - rest:] = torch.randperm(n_classes, generator=generator)[:rest]
    return labels[torch.randperm(n, generator=generator)].to(device)


def wrong_labels(labels: torch.Tensor, n_classes: int = 10, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """For each label, a different label drawn uniformly from the other n_classes − 1 (for the
    matching-aware discriminator: real images shown with a wrong condition)."""
    shift = torch.randint(1, n_classes, labels.shape, generator=generator).to(labels.device)
    return (labels + shift) % n_classes


def to_tanh_range(x01: torch.Tensor) -> torch.Tensor:
    return x01 * 2.0 - 1.0


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def centre_patch(x: torch.Tensor, lo: int = 9, size: int = 10) -> torch.Tensor:
    """x[:, lo:lo+size, lo:lo+size] of 28×28 images (flat or not), flattened to (N, size²)."""
    img = x.reshape(-1, SIDE, SIDE)
    return img[:, lo:lo + size, lo:lo + size].reshape(len(img), size * size)


def patch_penalty(fake: torch.Tensor, cond: torch.Tensor, lo: int = 9, size: int = 10) -> torch.Tensor:
    """MSE(centre patch of the generated images, the conditioning patch): the imputer's λ term."""
    return F.mse_loss(centre_patch(fake, lo, size), cond)
