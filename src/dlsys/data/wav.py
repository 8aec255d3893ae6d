"""WAV reader/writer (soundfile): mono float32 at the expected rate, clear errors for bad files.

`read_wav` down-mixes to mono and resamples (polyphase, scipy) to the rate the caller expects, with a
logged warning, so a file recorded at another rate still works. Empty, unreadable or non-finite
files raise `DataFormatError` naming the file. `write_wav` writes atomically.
"""

from __future__ import annotations

import logging
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.core.outputs import atomic_path

log = logging.getLogger(__name__)

DEFAULT_SR = 16000


def read_wav(path: str | Path, sr: int = DEFAULT_SR, warn_resample: bool = True) -> np.ndarray:
    """Read `path` as a 1-D float32 array in [-1, 1] at `sr` Hz (mono; resampled if needed).

    `warn_resample=False` for corpora read file by file at another rate by design (LibriSpeech FLAC,
    ESC-50 at 44.1 kHz), where one warning per file would bury the log.
    """
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: file not found")
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise DataFormatError(f"{path}: empty audio file (0 samples)")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(x)):
        raise DataFormatError(f"{path}: contains NaN or infinite samples")
    if file_sr != sr:
        if warn_resample:
            log.warning("%s: sample rate %d Hz, resampling to %d Hz", path, file_sr, sr)
        x = resample(x, file_sr, sr)
    return np.ascontiguousarray(x, dtype=np.float32)


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = gcd(int(sr_from), int(sr_to))
    return resample_poly(np.asarray(x, dtype=np.float64), sr_to // g, sr_from // g).astype(np.float32)


def write_wav(path: str | Path, x: np.ndarray, sr: int = DEFAULT_SR, subtype: str = "PCM_16",
              atomic: bool = True) -> Path:
    """Write a mono signal (atomically unless the caller already writes into a temporary directory).

    PCM_16 (the course files' format) refuses samples outside [-1, 1] instead of clipping them silently.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{path}: expected a 1-D signal, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: refusing to write NaN or infinite samples")
    if subtype.startswith("PCM") and x.size and float(np.max(np.abs(x))) > 1.0:
        raise ValueError(f"{path}: samples outside [-1, 1] would clip in {subtype}")
    path = Path(path)
    if not atomic:
        sf.write(path, x, int(sr), subtype=subtype, format="WAV")
        return path
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, x, int(sr), subtype=subtype, format="WAV")
    return path


def quantize16(x: np.ndarray) -> np.ndarray:
    """Round to the 16-bit PCM grid, so what is written is exactly what is read back."""
    return (np.round(np.asarray(x, dtype=np.float64) * 32768.0).clip(-32768, 32767) / 32768.0).astype(np.float32)
