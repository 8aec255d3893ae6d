"""Speech denoisers on STFT magnitude frames: fully-connected, 1-D CNN (along frequency), recurrent IBM.

Frame models map a (B, F) normalised noisy log-magnitude column to a non-negative (B, F) output: the
clean magnitude itself (`predict: magnitude`) or a gain on the noisy magnitude (`predict: mask`,
Ŝ = out ⊙ |X|); either way the loss compares against the clean magnitude.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ACTIVATIONS = {"relu": nn.ReLU, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid}


class FCDenoiser(nn.Module):
    """F → hidden[0] → … → F, ReLU + dropout between, a non-negative output activation."""

    def __init__(self, n_bins: int, hidden: Sequence[int], dropout: float = 0.0, out_act: str = "relu"):
        super().__init__()
        if len(hidden) < 2:
            raise ValueError("the FC denoiser needs at least two hidden layers")
        layers: list[nn.Module] = []
        width = n_bins
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers += [nn.Linear(width, n_bins), ACTIVATIONS[out_act]()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def conv1d_out_len(length: int, kernel: int, stride: int) -> int:
    """Output length of an unpadded Conv1d / MaxPool1d (dilation 1)."""
    return (length - kernel) // stride + 1


def cnn1d_flat_size(n_bins: int, conv: Sequence[Sequence[int]], pool: int) -> int:
    """Flattened size after the conv stack: conv = [[channels, kernel, stride], ...], max-pool `pool` (1 = none)."""
    length, channels = n_bins, 1
    for ch, k, s in conv:
        length = conv1d_out_len(length, k, s)
        if pool > 1:
            length = conv1d_out_len(length, pool, pool)
        if length < 1:
            raise ValueError(f"conv stack {list(map(list, conv))} with pool {pool} shrinks {n_bins} bins to nothing")
        channels = ch
    return channels * length


class CNN1dDenoiser(nn.Module):
    """Input B×1×F, unpadded convolutions along frequency (stride/max-pool shrink), flatten, Linear → F."""

    def __init__(self, n_bins: int, conv: Sequence[Sequence[int]], pool: int = 1, dropout: float = 0.0,
                 out_act: str = "relu"):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for ch, k, s in conv:
            layers += [nn.Conv1d(cin, ch, kernel_size=k, stride=s, padding=0), nn.ReLU()]
            if pool > 1:
                layers.append(nn.MaxPool1d(pool))
            cin = ch
        self.features = nn.Sequential(*layers)
        self.flat_size = cnn1d_flat_size(n_bins, conv, pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(self.flat_size, n_bins),
                                  ACTIVATIONS[out_act]())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.head(self.features(x))


class RNNMaskDenoiser(nn.Module):
    """GRU/LSTM over (B, T, F) frames → per-frame mask logits (B, T, F); packed sequences honour lengths."""

    def __init__(self, n_bins: int, cell: str = "gru", hidden: int = 256, layers: int = 2,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn_cls(n_bins, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                           dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden * (2 if bidirectional else 1), n_bins)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits; apply a sigmoid for the mask. Padded frames' outputs are zero-input garbage: mask them."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return self.out(self.drop(h))


class FrameMaskFC(nn.Module):
    """Per-frame MLP over (B, T, F) frames → mask logits (B, T, F): the recurrent model's baseline.

    Same inputs, target and call as `RNNMaskDenoiser`, but no memory: each frame sees itself and its
    `context` neighbours on each side (zeros beyond a sequence's ends), F·(2·context + 1) inputs.
    """

    def __init__(self, n_bins: int, hidden: Sequence[int], context: int = 0, dropout: float = 0.0):
        super().__init__()
        if not hidden:
            raise ValueError("the FC mask model needs at least one hidden layer")
        self.context = context
        layers: list[nn.Module] = []
        width = n_bins * (2 * context + 1)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_bins))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits; padded frames' outputs are garbage, as the RNN's: mask them."""
        c = self.context
        if c:
            b, t, f = x.shape
            # Padding must look like the zeros beyond a sequence's start, whatever it held.
            x = x * frame_mask(lengths, t, x.device)[:, :, None]
            x = nn.functional.pad(x, (0, 0, c, c)).unfold(1, 2 * c + 1, 1)  # (B, T, F, 2c+1)
            x = x.transpose(2, 3).reshape(b, t, f * (2 * c + 1))
        return self.net(x)


def frame_mask(lengths: torch.Tensor, t_max: int, device=None) -> torch.Tensor:
    """(B, T) float: 1 for frames < lengths[i], 0 for padding."""
    return (torch.arange(t_max, device=device)[None, :] < lengths.to(device)[:, None]).float()


def masked_bce(logits: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy averaged over the valid (unpadded) frames and all bins only; with `weight`
    (same shape), each bin's term is multiplied by its weight before that average."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return masked_mean(loss if weight is None else loss * weight, lengths)


def masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, F) values over the valid (unpadded) frames and all bins."""
    valid = frame_mask(lengths, values.shape[1], values.device)[:, :, None]
    return (values * valid).sum() / (valid.sum() * values.shape[-1]).clamp_min(1.0)
