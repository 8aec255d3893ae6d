"""The noise bank: one function per kind, `kind(n, sr, rng) -> float32 (n,)` at unit RMS, and SNR mixing.

Each generator is vectorised (impulse trains through `lfilter`, spectral shaping with one FFT), so a
minute of noise costs milliseconds. The shape constants in each function define the kind.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.fft as scipy_fft
from scipy.signal import lfilter

from dlsys.core.errors import UserError


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = x - x.mean()
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def _resonator(fc: float, decay_s: float, sr: int) -> tuple[list[float], list[float]]:
    """Two-pole resonance at fc with an exponential decay time constant decay_s."""
    r = np.exp(-1.0 / (decay_s * sr))
    return [1.0 - r], [1.0, -2.0 * r * np.cos(2 * np.pi * fc / sr), r * r]


def _slow(n: int, sr: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """A smooth random curve (about `rate_hz` independent values per second), zero mean, unit std."""
    k = max(2, int(np.ceil(n / sr * rate_hz)) + 2)
    pts = rng.standard_normal(k)
    return np.interp(np.linspace(0, k - 1, n), np.arange(k), pts)


def _spectral(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ∝ 1 / f^exponent (DC removed)."""
    spec = scipy_fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2)
    spec[0] = 0.0
    return scipy_fft.irfft(spec, n=n)


def chip_crunch(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Chip-bag crunching: dense impulsive crackles (clustered in bursts) exciting short resonances."""
    rate = 1500.0 * np.exp(1.2 * _slow(n, sr, rng, 4.0))                    # crackles per second
    hits = rng.random(n) < rate / sr
    amps = np.where(hits, rng.standard_normal(n) * np.exp(rng.normal(0.0, 0.6, n)), 0.0)
    out = np.zeros(n)
    bank = rng.integers(0, 6, n)
    for b, fc in enumerate(rng.uniform(1200, 7000, 6)):
        out += lfilter(*_resonator(min(fc, 0.45 * sr), rng.uniform(0.0005, 0.002), sr),
                       np.where(bank == b, amps, 0.0))
    return _unit(out + 0.3 * np.diff(amps, prepend=0.0))


def babble(n: int, sr: int, rng: np.random.Generator, talkers: int = 5) -> np.ndarray:
    """Several synthetic talkers speaking at once (cocktail-party babble)."""
    from dlsys.data.audio.speech import make_speakers, speak_seconds

    out = np.zeros(n)
    for spk in make_speakers(rng, talkers, start_id=10**6):
        y, _ = speak_seconds(spk, rng, n / sr + 0.5, sr, pause_prob=0.1)
        start = int(rng.integers(0, int(0.5 * sr)))
        out += y[start:start + n]
    return _unit(out)


def white(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Flat-spectrum Gaussian noise."""
    return _unit(rng.standard_normal(n))


def pink(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise (-3 dB per octave)."""
    return _unit(_spectral(n, rng, 1.0))


def brown(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """1/f² (Brownian) noise: a leaky integral of white noise, high-passed below 20 Hz."""
    x = lfilter([1.0], [1.0, -0.999], rng.standard_normal(n))
    return _unit(lfilter([1.0, -1.0], [1.0, -np.exp(-2 * np.pi * 20 / sr)], x))


def hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz) with decaying odd/even harmonics, a little drift and buzz."""
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    drift = 1.0 + 0.002 * _slow(n, sr, rng, 0.5)
    phase = 2 * np.pi * f0 * np.cumsum(drift) / sr
    out = np.zeros(n)
    for h in range(1, 12):
        out += (0.7 ** (h - 1)) * rng.uniform(0.5, 1.0) * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    return _unit(out + 0.02 * rng.standard_normal(n))


def keyboard(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Keyboard typing: clicks in bursts (key down + key up), each a short resonant noise burst."""
    rate = 9.0 * np.clip(1.0 + _slow(n, sr, rng, 0.7), 0.05, None)          # keystrokes per second
    down = rng.random(n) < rate / sr
    up_delay = int(0.07 * sr)
    up = np.roll(down, up_delay) & (rng.random(n) < 0.8)
    amps = down * rng.uniform(0.5, 1.0, n) + up * rng.uniform(0.2, 0.5, n)
    burst = rng.standard_normal(int(0.006 * sr)) * np.exp(-np.arange(int(0.006 * sr)) / (0.0015 * sr))
    clicks = np.convolve(amps, burst)[:n]
    out = lfilter(*_resonator(rng.uniform(2000, 4500, 1)[0], 0.002, sr), clicks)
    out += lfilter(*_resonator(rng.uniform(300, 700, 1)[0], 0.004, sr), clicks)
    return _unit(out + 0.01 * rng.standard_normal(n))


def engine(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Combustion engine: firing pulses at a slowly varying rate through low resonances, plus rumble."""
    firing = rng.uniform(25.0, 60.0) * (1.0 + 0.15 * _slow(n, sr, rng, 0.3))
    phase = np.cumsum(firing) / sr
    pulses = np.diff(np.floor(phase), prepend=0.0) * rng.uniform(0.7, 1.0, n)
    out = lfilter(*_resonator(rng.uniform(80, 200), 0.01, sr), pulses)
    out = out / (np.std(out) + 1e-12) + 0.5 * lfilter(*_resonator(rng.uniform(400, 900), 0.003, sr), pulses) / (
        np.std(pulses) + 1e-12)
    rumble = lfilter([1.0], [1.0, -0.995], rng.standard_normal(n))
    return _unit(out + 0.3 * rumble / (np.std(rumble) + 1e-12))


def wind(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Wind: low-passed noise in slow gusts, with a faint whistle."""
    gust = np.exp(0.8 * _slow(n, sr, rng, 0.8))
    base = lfilter([1.0], [1.0, -0.98], rng.standard_normal(n))
    whistle = lfilter(*_resonator(rng.uniform(500, 1500), 0.02, sr), rng.standard_normal(n))
    return _unit(gust * (base / np.std(base) + 0.3 * gust * whistle / (np.std(whistle) + 1e-12)))


def beeps(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Tonal beeps: short sine tones (random pitch per beep) with ramped on/offs and gaps."""
    out = np.zeros(n)
    t = 0
    while t < n:
        length = int(rng.uniform(0.08, 0.35) * sr)
        gap = int(rng.uniform(0.05, 0.4) * sr)
        seg = min(length, n - t)
        f = rng.choice([440.0, 660.0, 880.0, 1000.0, 1200.0, 1760.0, 2400.0, 3000.0])
        ramp = np.minimum(1.0, np.minimum(np.arange(seg), seg - np.arange(seg)) / (0.005 * sr))
        out[t:t + seg] = ramp * np.sin(2 * np.pi * f * np.arange(seg) / sr)
        t += length + gap
    return _unit(out + 0.003 * rng.standard_normal(n))


NOISE_KINDS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "chip_crunch": chip_crunch,
    "babble": babble,
    "white": white,
    "pink": pink,
    "brown": brown,
    "hum": hum,
    "keyboard": keyboard,
    "engine": engine,
    "wind": wind,
    "beeps": beeps,
}


def make_noise(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    if kind not in NOISE_KINDS:
        raise UserError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")
    return NOISE_KINDS[kind](n, sr, rng)


def scale_to_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """The noise scaled so that 10·log10(Σ clean² / Σ noise²) = snr_db."""
    ps = float(np.sum(np.asarray(clean, np.float64) ** 2))
    pn = float(np.sum(np.asarray(noise, np.float64) ** 2)) + 1e-20
    return (np.asarray(noise, np.float64) * np.sqrt(ps / pn / 10 ** (snr_db / 10))).astype(np.float32)
