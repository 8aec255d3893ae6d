"""Batched STFT / inverse STFT with librosa's conventions, on any torch device.

librosa.stft(x, n_fft, hop_length): periodic Hann window, centred frames with zero ("constant")
padding of n_fft // 2 on both sides, output F = n_fft // 2 + 1 bins × frames.
"""

from __future__ import annotations

import torch


def hann(n_fft: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, device=device, dtype=dtype)


def stft(x: torch.Tensor, n_fft: int = 1024, hop: int = 512) -> torch.Tensor:
    """x: (T,) or (B, T) real → complex (F, frames) or (B, F, frames)."""
    return torch.stft(x, n_fft=n_fft, hop_length=hop, window=hann(n_fft, x.device, x.dtype),
                      center=True, pad_mode="constant", return_complex=True)


def istft(spec: torch.Tensor, length: int, n_fft: int = 1024, hop: int = 512) -> torch.Tensor:
    """Inverse of `stft` with the same settings; output trimmed/padded to `length` samples."""
    real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    return torch.istft(spec, n_fft=n_fft, hop_length=hop, window=hann(n_fft, spec.device, real_dtype),
                       center=True, length=length)
