"""Signal-to-noise ratio in dB, with the course's 1e-20 guards, and SNR / SNR-improvement reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)
EPS = 1e-20


def snr_db(reference, estimate) -> float:
    """SNR = 10·log10(Σ s² / Σ (s − ŝ)²); guards keep silent references and exact matches finite."""
    if isinstance(reference, torch.Tensor):
        s = reference.detach().double().cpu().numpy()
    else:
        s = np.asarray(reference, dtype=np.float64)
    if isinstance(estimate, torch.Tensor):
        e = estimate.detach().double().cpu().numpy()
    else:
        e = np.asarray(estimate, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"reference and estimate lengths differ: {s.shape} vs {e.shape}")
    if not np.any(s):
        log.warning("SNR against an all-zero (silent) reference is undefined; the guarded value reported is "
                    "not a measurement")
    return float(10.0 * np.log10((np.sum(s**2) + EPS) / (np.sum((s - e) ** 2) + EPS)))


def snr_db_many(reference: torch.Tensor, estimate: torch.Tensor, lengths=None) -> torch.Tensor:
    """Per-row SNR in dB of (B, T) batches (float64), counting only the first lengths[i] samples of row i."""
    if reference.shape != estimate.shape:
        raise ValueError(f"reference and estimate shapes differ: {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    s = reference.detach().double()
    e = estimate.detach().double().to(s.device)
    if lengths is not None:
        keep = torch.arange(s.shape[-1], device=s.device)[None, :] < torch.as_tensor(lengths, device=s.device)[:, None]
        s, e = s * keep, e * keep
    silent = int(((s**2).sum(-1) == 0).sum())
    if silent:
        log.warning("SNR: %d of %d references are all zero (silent): their SNR is undefined, the guarded value "
                    "reported is not a measurement", silent, len(s))
    return 10.0 * torch.log10(((s**2).sum(-1) + EPS) / (((s - e) ** 2).sum(-1) + EPS))


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
