"""From estimated magnitudes or masks back to waveforms, and their SNR / SNR improvement.

One module for every denoiser: Ŝ = (X / |X|) ⊙ |Ŝ| (the noisy phase; where |X| = 0 the phase is taken
as 0), or Ŝ = M̂ ⊙ X for masks; inverse STFT with the analysis settings and the input's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlsys.evaluation.snr import snr_db, snr_db_many
from dlsys.features.stft import istft, istft_many


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


@dataclass
class SnrReport:
    snr: np.ndarray      # SNR of each estimate against its clean reference, dB
    snr_in: np.ndarray   # SNR of the unprocessed mixture, dB
    snri: np.ndarray     # snr - snr_in

    def summary(self, prefix: str = "") -> dict:
        return {f"{prefix}snr_db": float(np.mean(self.snr)),
                f"{prefix}snr_median_db": float(np.median(self.snr)),
                f"{prefix}snr_in_db": float(np.mean(self.snr_in)),
                f"{prefix}snri_db": float(np.mean(self.snri))}


def snr_report(clean, estimate, mixture) -> SnrReport:
    """SNR and SNRi of one signal (any array-likes of equal length)."""
    snr = snr_db(clean, estimate)
    snr_in = snr_db(clean, mixture)
    return SnrReport(np.array([snr]), np.array([snr_in]), np.array([snr - snr_in]))


def snr_report_many(clean: torch.Tensor, estimate: torch.Tensor, mixture: torch.Tensor, lengths) -> SnrReport:
    """Padded (B, T) batches with per-row lengths → per-file SNR and SNRi."""
    snr = snr_db_many(clean, estimate, lengths).cpu().numpy()
    snr_in = snr_db_many(clean, mixture, lengths).cpu().numpy()
    return SnrReport(snr, snr_in, snr - snr_in)


def masked_istft_many(mix: torch.Tensor, mask: torch.Tensor, lengths, n_fft: int, hop: int) -> torch.Tensor:
    """Padded complex mixtures (B, F, T) and masks (B, F, T) → padded waveforms (B, max length)."""
    return istft_many(apply_mask(mix, mask), lengths, n_fft, hop)


PCM16_MAX = 32767 / 32768


def clip_audio(x) -> tuple[np.ndarray, int]:
    """A waveform ready for a 16-bit wav: float32 within [-1, 32767/32768]; returns it and how many samples were clipped."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    n = int(np.count_nonzero((x > PCM16_MAX) | (x < -1.0)))
    return np.clip(x, -1.0, PCM16_MAX), n
