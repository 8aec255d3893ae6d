"""Activity recognition on 80×3 accelerometer windows, the lecture's two Keras models in torch.

Dense: three 100-unit dense layers applied to every time step, flatten, linear to the classes
(68,606 parameters for 80×3 inputs and 6 classes). 1-D CNN: conv 10×100, conv 10×100, max-pool 3,
conv 10×160, conv 10×160, global average pooling, dropout, linear (520,486 parameters).
Both return logits; softmax is in the loss.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DenseHAR(nn.Module):
    def __init__(self, length: int = 80, channels: int = 3, n_classes: int = 6, hidden: int = 100,
                 layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = []
        width = channels
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.per_step = nn.Sequential(*blocks)
        self.out = nn.Linear(length * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, length, channels)
        return self.out(self.per_step(x).flatten(1))


def conv1d_gemm(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """`conv`'s valid, stride-1 convolution on channels-last x (B, L, C) → (B, L - k + 1, out): one GEMM
    over the unfolded windows. Why not `conv(x)`: through oneDNN's CPU convolution the same seed gave one of
    two trained HAR models from process to process (cause not pinned down); this path repeated in every
    check (README, Known limitations), at about 1.5× the convolution time for this small net."""
    out_c, in_c, k = conv.weight.shape
    cols = x.unfold(1, k, 1)                                      # (B, L', C, k): C-major, like the weight
    return F.linear(cols.reshape(*cols.shape[:2], in_c * k), conv.weight.reshape(out_c, in_c * k), conv.bias)


class CNN1dHAR(nn.Module):
    def __init__(self, channels: int = 3, n_classes: int = 6, kernel: int = 10, filters: tuple = (100, 100, 160, 160),
                 pool: int = 3, dropout: float = 0.5):
        super().__init__()
        f1, f2, f3, f4 = filters
        self.features = nn.Sequential(
            nn.Conv1d(channels, f1, kernel), nn.ReLU(),
            nn.Conv1d(f1, f2, kernel), nn.ReLU(),
            nn.MaxPool1d(pool),
            nn.Conv1d(f2, f3, kernel), nn.ReLU(),
            nn.Conv1d(f3, f4, kernel), nn.ReLU(),
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(f4, n_classes)

    @staticmethod
    def min_length(kernel: int = 10, pool: int = 3) -> int:
        """The shortest window that leaves one step after the last convolution (75 for the lecture's net)."""
        return pool * (2 * (kernel - 1) + 1) + 2 * (kernel - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, length, channels)
        return self.out(self.drop(self.time_features(x).mean(dim=1)))  # global average pooling over time

    def time_features(self, x: torch.Tensor) -> torch.Tensor:
        """`features` applied channels-last: (B, length, channels) → (B, steps, filters), GEMM convolutions."""
        h = x
        for layer in self.features:  # channels-last throughout: no transposes between the GEMMs
            if isinstance(layer, nn.Conv1d):
                h = conv1d_gemm(h, layer)
            elif isinstance(layer, nn.MaxPool1d):
                k = layer.kernel_size
                steps = h.shape[1] // k  # floor, as MaxPool1d
                h = h[:, :steps * k].reshape(h.shape[0], steps, k, h.shape[2]).amax(dim=2)
            else:
                h = layer(h)
        return h


def build(kind: str, length: int, channels: int, n_classes: int, dropout: float) -> nn.Module:
    if kind == "dense":
        return DenseHAR(length, channels, n_classes)
    if kind == "cnn1d":
        return CNN1dHAR(channels, n_classes, dropout=dropout)
    raise ValueError(f"unknown HAR model {kind!r} (dense | cnn1d)")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
