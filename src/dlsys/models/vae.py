"""A fully-connected variational autoencoder with a small latent layer (K < 5 standard normals).

Loss = reconstruction (Bernoulli BCE on [0, 1] pixels, summed over pixels) + KL(q(z|x) ‖ N(0, I)),
both averaged over the batch. The decoder returns logits; `torch.sigmoid` gives pixels.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

N_PIXELS = 28 * 28


def _stack(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, latent_dim: int = 4, hidden: Sequence[int] = (512, 256), n_pixels: int = N_PIXELS):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _stack([n_pixels, *hidden])
        self.mu = nn.Linear(hidden[-1], latent_dim)
        self.logvar = nn.Linear(hidden[-1], latent_dim)
        self.decoder = nn.Sequential(_stack([latent_dim, *reversed(hidden)]), nn.Linear(hidden[0], n_pixels))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.flatten(1))
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits, (N, 784)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar)), mu, logvar


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = μ + σ·ε with ε ~ N(0, I): the sample stays differentiable in μ and log σ²."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) summed over latent dims, per sample: −½ Σ (1 + log σ² − μ² − σ²)."""
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def reconstruction_bce(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood summed over pixels, per sample."""
    return F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(dim=1)


def vae_terms(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean BCE, mean KL) over the batch; the loss is their sum."""
    logits, mu, logvar = model(x)
    return reconstruction_bce(logits, x).mean(), kl_divergence(mu, logvar).mean()


def traversal_codes(latent_dim: int, dim: int, values: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """Latent codes for one traversal row: the other K−1 coordinates drawn once from N(0, 1) and held
    fixed; coordinate `dim` takes each of `values` in turn. Returns (len(values), K)."""
    if not 0 <= dim < latent_dim:
        raise ValueError(f"dim {dim} out of range for {latent_dim} latent dimensions")
    base = torch.randn(latent_dim, generator=generator)
    codes = base.repeat(len(values), 1)
    codes[:, dim] = values.to(codes.dtype)
    return codes
