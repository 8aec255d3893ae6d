"""Keyword-spotting CNN on log-mel spectrograms, as in the lecture.

Five 3×3 convolution blocks (12, 24, 48, 48, 48 filters), each conv → batch norm → ReLU, with a
max-pool (3×3, stride 2, 'same' padding) after each of the first three blocks, a final max-pool over
all remaining time frames, dropout, and a linear layer to the classes (softmax lives in the loss).
`build` rebuilds a checkpoint's model from its config: one CNN or an ensemble of them.
"""

from __future__ import annotations

import torch
from torch import nn

from dlsys.models.ensemble import ProbabilityAverage


class KwsCNN(nn.Module):
    def __init__(self, n_classes: int, n_mels: int = 40, filters: tuple = (12, 24, 48, 48, 48),
                 pooled_blocks: int = 3, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, freq = 1, n_mels
        for i, c_out in enumerate(filters):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i < pooled_blocks:
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
                freq = (freq - 1) // 2 + 1
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(c_in * freq, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, n_mels, frames)
        h = self.features(x.unsqueeze(1))          # (B, C, F', T')
        h = h.amax(dim=3)                          # max-pool over all time frames
        return self.out(self.drop(h.flatten(1)))


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse class frequencies normalised to mean 1 (the lecture's weighting); absent classes get 0."""
    counts = torch.bincount(labels, minlength=n_classes).double()
    w = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    present = counts > 0
    w = w / w[present].mean()
    return w.float()


def build(config: dict) -> nn.Module:
    """The model a KWS checkpoint's config describes: one CNN, or (`members` set) an ensemble of
    `members` CNNs built from `member`, averaging their class probabilities."""
    if "members" in config:
        return ProbabilityAverage([KwsCNN(**config["member"]) for _ in range(int(config["members"]))])
    return KwsCNN(**config)
