"""Batched STFT / inverse STFT with librosa's conventions, on any torch device.

librosa.stft(x, n_fft, hop_length): periodic Hann window, centred frames with zero ("constant")
padding of n_fft // 2 on both sides, output F = n_fft // 2 + 1 bins × (1 + T // hop) frames.

`stft_many` / `istft_many` handle many signals of different lengths in a few batched calls: signals are
zero-padded to a common length (zero padding leaves every frame of the shorter signal unchanged, since
librosa pads with zeros too), and the inverse normalises each signal by its own window envelope, so each
result equals the one-signal transform exactly.

Masks and reconstruction live here too, beside the transforms they invert: the ideal binary mask
M = 1[|S| > |N|] (the recurrent denoiser's target), Ŝ = M̂ ⊙ X, and Ŝ = (X / |X|) ⊙ |Ŝ| (an estimated
magnitude with the noisy phase; where |X| = 0 the phase is taken as 0), each followed by the inverse
STFT with the analysis settings and the input's length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def hann(n_fft: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, device=device, dtype=dtype)


def n_frames(length: int, hop: int) -> int:
    """Frames of a centred STFT of `length` samples (librosa's count)."""
    return 1 + length // hop


def stft(x: torch.Tensor, n_fft: int = 1024, hop: int = 512) -> torch.Tensor:
    """x: (T,) or (B, T) real → complex (F, frames) or (B, F, frames)."""
    return torch.stft(x, n_fft=n_fft, hop_length=hop, window=hann(n_fft, x.device, x.dtype),
                      center=True, pad_mode="constant", return_complex=True)


def istft(spec: torch.Tensor, length: int, n_fft: int = 1024, hop: int = 512) -> torch.Tensor:
    """Inverse of `stft` with the same settings; output trimmed/padded to `length` samples."""
    real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    return torch.istft(spec, n_fft=n_fft, hop_length=hop, window=hann(n_fft, spec.device, real_dtype),
                       center=True, length=length)


def pad_signals(signals: Sequence, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length 1-D signals → zero-padded (B, T_max) tensor and (B,) lengths."""
    lengths = torch.tensor([len(s) for s in signals], dtype=torch.long)
    out = torch.zeros(len(signals), int(lengths.max()) if len(signals) else 0, dtype=dtype)
    for i, s in enumerate(signals):  # a copy per file, not per sample
        out[i, : len(s)] = torch.as_tensor(np.asarray(s), dtype=dtype)
    return out.to(device), lengths


def stft_many(signals: Sequence, n_fft: int = 1024, hop: int = 512, device=None,
              batch_size: int = 64) -> list[torch.Tensor]:
    """STFT of many variable-length signals in batches → list of complex (F, frames_i) on `device`.

    Signals are grouped by length (fewest padded samples), each group padded and transformed in one call.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = sorted(range(len(signals)), key=lambda i: len(signals[i]))
    out: list[torch.Tensor | None] = [None] * len(signals)
    for lo in range(0, len(order), batch_size):
        idx = order[lo: lo + batch_size]
        x, lengths = pad_signals([signals[i] for i in idx], device=device)
        spec = stft(x, n_fft, hop)
        for j, i in enumerate(idx):
            out[i] = spec[j, :, : n_frames(int(lengths[j]), hop)]
    return out  # type: ignore[return-value]


def istft_many(spec: torch.Tensor, lengths: Sequence[int] | torch.Tensor, n_fft: int = 1024,
               hop: int = 512) -> torch.Tensor:
    """Batched inverse of `stft_many`: spec (B, F, T_max) complex, zero past each signal's own frames.

    Returns (B, max(lengths)) real; row i equals `istft(spec[i, :, :frames_i], lengths[i])` on its first
    lengths[i] samples and is zero after them.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
    b, _, t = spec.shape
    real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    win = hann(n_fft, spec.device, real_dtype)
    frames_i = 1 + lengths // hop
    valid = (torch.arange(t)[None, :] < frames_i[:, None]).to(spec.device, real_dtype)  # (B, T)
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * win[None, :, None] * valid[:, None, :]
    total = n_fft + hop * (t - 1)
    ola = F.fold(frames, output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop)).reshape(b, total)
    env = F.fold((win**2)[None, :, None] * valid[:, None, :], output_size=(1, total),
                 kernel_size=(1, n_fft), stride=(1, hop)).reshape(b, total)
    y = torch.where(env > 1e-11, ola / env.clamp_min(1e-11), torch.zeros_like(ola))
    start = n_fft // 2
    max_len = int(lengths.max())
    y = y[:, start: start + max_len]
    if y.shape[1] < max_len:
        y = F.pad(y, (0, max_len - y.shape[1]))
    keep = torch.arange(max_len)[None, :] < lengths[:, None]
    return y * keep.to(y.device, y.dtype)


# ---------------------------------------------------------------- masks and reconstruction

def ideal_binary_mask(mag_s: torch.Tensor, mag_n: torch.Tensor) -> torch.Tensor:
    """M = 1[|S| > |N|] (float 0/1, same shape)."""
    return (mag_s > mag_n).to(mag_s.dtype)


def with_noisy_phase(mix: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Ŝ = (X / |X|) ⊙ |Ŝ|; bins with |X| = 0 get phase 0 (Ŝ = |Ŝ|), never NaN."""
    mag_x = mix.abs()
    unit = torch.where(mag_x > 0, mix / mag_x.clamp_min(torch.finfo(mag_x.dtype).tiny),
                       torch.ones_like(mix))
    return unit * magnitude.to(mag_x.dtype)


def apply_mask(mix: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ŝ = M̂ ⊙ X (complex)."""
    return mix * mask.to(mix.real.dtype)


def reconstruct(mix: torch.Tensor, magnitude: torch.Tensor, length: int, n_fft: int, hop: int) -> torch.Tensor:
    """One signal: complex mixture (F, T) and estimated magnitude (F, T) → waveform of `length` samples."""
    return istft(with_noisy_phase(mix, magnitude), length, n_fft, hop)


def masked_istft_many(mix: torch.Tensor, mask: torch.Tensor, lengths, n_fft: int, hop: int) -> torch.Tensor:
    """Padded complex mixtures (B, F, T) and masks (B, F, T) → padded waveforms (B, max length)."""
    return istft_many(apply_mask(mix, mask), lengths, n_fft, hop)
