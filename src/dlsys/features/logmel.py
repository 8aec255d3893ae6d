"""Batched log-mel spectrograms (the lecture's keyword-spotting features) on any torch device.

Frames of `frame` samples every `hop` samples without centring (1 s at 16 kHz with 25 ms / 10 ms
gives 98 frames), periodic Hann window, zero-padded to `n_fft`, power spectrum through a mel
filterbank (librosa's), then log10(mel + eps).
"""

from __future__ import annotations

import numpy as np
import torch


def n_frames(n_samples: int, frame: int, hop: int) -> int:
    if n_samples < frame:
        raise ValueError(f"signal of {n_samples} samples is shorter than one frame ({frame})")
    return 1 + (n_samples - frame) // hop


def fit_length(x: np.ndarray | torch.Tensor, length: int):
    """Zero-pad or crop the last axis to `length` samples (crops keep the start, as the lecture)."""
    n = x.shape[-1]
    if n >= length:
        return x[..., :length]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, length - n)]
    if isinstance(x, torch.Tensor):
        return torch.nn.functional.pad(x, (0, length - n))
    return np.pad(x, pad)


class LogMel(torch.nn.Module):
    def __init__(self, sr: int = 16000, n_fft: int = 512, frame: int = 400, hop: int = 160, n_mels: int = 40,
                 fmin: float = 0.0, fmax: float | None = None, eps: float = 1e-6):
        super().__init__()
        if frame > n_fft:
            raise ValueError(f"frame ({frame}) must not exceed n_fft ({n_fft})")
        import librosa

        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("fb", torch.from_numpy(fb).float())            # (n_mels, n_fft//2+1)
        self.register_buffer("window", torch.hann_window(frame, periodic=True))
        self.n_fft, self.frame, self.hop, self.eps = n_fft, frame, hop, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T) float → (B, n_mels, frames)."""
        frames = x.unfold(-1, self.frame, self.hop) * self.window     # (B, frames, frame)
        spec = torch.fft.rfft(frames, n=self.n_fft)                     # zero-padded to n_fft
        power = (spec.real**2 + spec.imag**2).transpose(-1, -2)        # (B, bins, frames)
        return torch.log10(self.fb @ power + self.eps)


def logmel_batched(clips: np.ndarray | torch.Tensor, extractor: LogMel, device: torch.device,
                   batch: int = 1024) -> torch.Tensor:
    """Log-mel of every row of `clips` (N, T), computed in device batches; returns a CPU tensor."""
    x = torch.as_tensor(clips, dtype=torch.float32)
    extractor = extractor.to(device)
    out = []
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            out.append(extractor(x[lo:lo + batch].to(device)).cpu())
    return torch.cat(out) if out else torch.zeros(0)
