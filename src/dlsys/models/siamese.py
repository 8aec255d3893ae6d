"""Siamese speaker verification: one shared GRU encoder, logit = inner product of two embeddings.

The encoder compresses STFT magnitudes (log(1 + |X|)), normalises each frequency bin with statistics
fixed from the training set, runs a GRU over the frames, averages its outputs over time and projects
to the embedding. The pair's logit ⟨e(a), e(b)⟩ is symmetric by construction; sigmoid + BCE in the loss.
"""

from __future__ import annotations

import torch
from torch import nn


class SpeakerEncoder(nn.Module):
    def __init__(self, n_bins: int = 513, hidden: int = 256, layers: int = 1, embedding: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_bins))
        self.register_buffer("std", torch.ones(n_bins))
        self.gru = nn.GRU(n_bins, hidden, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.proj = nn.Linear(hidden, embedding)

    @staticmethod
    def compress(mag: torch.Tensor) -> torch.Tensor:
        return torch.log1p(mag)

    def set_normalisation(self, mag: torch.Tensor) -> None:
        """Per-bin mean/std of log-magnitudes over all frames of `mag` (B, F, T)."""
        logm = self.compress(mag).transpose(1, 2).reshape(-1, mag.shape[1])
        self.mean.copy_(logm.mean(0))
        self.std.copy_(logm.std(0).clamp(min=1e-5))

    def forward(self, mag: torch.Tensor) -> torch.Tensor:  # mag: (B, F, T) → (B, embedding)
        x = (self.compress(mag).transpose(1, 2) - self.mean) / self.std
        h, _ = self.gru(x)
        return self.proj(h.mean(dim=1))


class Siamese(nn.Module):
    def __init__(self, encoder: SpeakerEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return pair_logits(self.encoder(a), self.encoder(b))

    def score_pairs(self, mags: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Logits of index pairs into `mags`, encoding every distinct utterance once."""
        used, inverse = torch.unique(torch.cat([first, second]), return_inverse=True)
        emb = self.encoder(mags[used])
        n = len(first)
        return pair_logits(emb[inverse[:n]], emb[inverse[n:]])


def pair_logits(ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
    return (ea * eb).sum(dim=-1)
