"""A source-filter speech synthesiser (numpy/scipy/torch-STFT, vectorised per utterance).

Source: a glottal pulse train following the speaker's F0 and an intonation contour (declination,
word accents, jitter), low-pass shaped by the speaker's spectral tilt, plus breath noise; and a white
noise source for frication, bursts and aspiration.
Filter: per 8-ms frame, a cascade of four formant resonances (Klatt-style, unity DC gain) whose
targets come from the phoneme sequence and glide between phonemes (coarticulation), a nasal
anti-resonance for nasals, and band-pass frication spectra for fricatives and plosive bursts.
Filtering happens in the STFT domain: the excitation's STFT is multiplied by the frame's envelope and
inverted, so one utterance costs a handful of array operations, not a per-sample loop.

The acoustic tables below (formant targets from Peterson & Barney's male averages, durations,
amplitudes) define the synthesiser, like a model's architecture; dataset-level knobs are params.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
import scipy.fft as scipy_fft
from scipy.signal import lfilter

FRAME_S = 0.008          # control-frame hop (seconds)
WINDOW_FRAMES = 4        # STFT window = 4 hops (32 ms at 16 kHz)
COARTIC_S = 0.022        # Gaussian smoothing of formant tracks (coarticulation), seconds
AMP_SMOOTH_S = 0.006     # Gaussian smoothing of amplitude tracks, seconds
F4_HZ = 3500.0           # fourth formant (male), scaled with vocal-tract length
BANDWIDTHS_HZ = (70.0, 95.0, 130.0, 200.0)
NASAL_ZERO = (1100.0, 200.0)   # anti-resonance frequency / bandwidth for nasals (Hz)
RMS_DBFS = -20.0         # utterance level before mixing
PEAK_MAX = 0.9           # the level is reduced if a peak would exceed this
NOISE_FLOOR_DB = -60.0   # room noise relative to the utterance RMS
FRICATION_GAIN = 1.5     # frication band-pass gain relative to the vowel cascade
PAUSE_S = 0.18           # a short pause between words ('_')
TIMBRE_HZ = (100.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 4500.0, 8000.0)  # anchors of a voice's colouring
TIMBRE_DB = 3.0          # default spread (std, dB) of the colouring between speakers
ACCENT = 0.05            # default spread (log std) of a speaker's per-phoneme formant targets

# kind: V vowel, D diphthong, N nasal, A approximant, F voiceless fricative, Z voiced fricative,
# H aspirate, P voiceless plosive, B voiced plosive, C affricate.
# Fields: kind, F start (F1, F2, F3), F end (diphthongs), duration s, voicing amp, frication amp,
# frication centre Hz, frication bandwidth Hz.
_V = "V"
PHONES: dict[str, tuple] = {
    "iy": (_V, (270, 2290, 3010), None, 0.12, 1.0, 0, 0, 0),
    "ih": (_V, (390, 1990, 2550), None, 0.09, 1.0, 0, 0, 0),
    "eh": (_V, (530, 1840, 2480), None, 0.10, 1.0, 0, 0, 0),
    "ae": (_V, (660, 1720, 2410), None, 0.13, 1.0, 0, 0, 0),
    "ah": (_V, (520, 1190, 2390), None, 0.09, 1.0, 0, 0, 0),
    "aa": (_V, (730, 1090, 2440), None, 0.13, 1.0, 0, 0, 0),
    "ao": (_V, (570, 840, 2410), None, 0.13, 1.0, 0, 0, 0),
    "uh": (_V, (440, 1020, 2240), None, 0.09, 1.0, 0, 0, 0),
    "uw": (_V, (300, 870, 2240), None, 0.12, 1.0, 0, 0, 0),
    "er": (_V, (490, 1350, 1690), None, 0.12, 1.0, 0, 0, 0),
    "ay": ("D", (730, 1090, 2440), (300, 2100, 2700), 0.18, 1.0, 0, 0, 0),
    "ey": ("D", (530, 1840, 2480), (300, 2200, 2800), 0.16, 1.0, 0, 0, 0),
    "ow": ("D", (570, 900, 2400), (330, 800, 2250), 0.16, 1.0, 0, 0, 0),
    "aw": ("D", (730, 1090, 2440), (350, 850, 2250), 0.18, 1.0, 0, 0, 0),
    "oy": ("D", (570, 840, 2410), (330, 2100, 2700), 0.19, 1.0, 0, 0, 0),
    "m": ("N", (250, 1100, 2300), None, 0.07, 0.45, 0, 0, 0),
    "n": ("N", (250, 1700, 2600), None, 0.06, 0.45, 0, 0, 0),
    "ng": ("N", (250, 2200, 2700), None, 0.07, 0.45, 0, 0, 0),
    "l": ("A", (360, 1000, 2800), None, 0.06, 0.7, 0, 0, 0),
    "r": ("A", (420, 1300, 1600), None, 0.06, 0.7, 0, 0, 0),
    "w": ("A", (300, 700, 2200), None, 0.05, 0.7, 0, 0, 0),
    "y": ("A", (270, 2100, 3000), None, 0.05, 0.7, 0, 0, 0),
    "s": ("F", None, None, 0.11, 0.0, 0.9, 5800, 3000),
    "sh": ("F", None, None, 0.11, 0.0, 1.0, 3200, 1800),
    "f": ("F", None, None, 0.10, 0.0, 0.35, 4500, 6000),
    "th": ("F", None, None, 0.09, 0.0, 0.25, 5000, 6000),
    "z": ("Z", None, None, 0.08, 0.35, 0.6, 5800, 3000),
    "zh": ("Z", None, None, 0.08, 0.35, 0.7, 3200, 1800),
    "v": ("Z", None, None, 0.07, 0.4, 0.25, 4500, 6000),
    "dh": ("Z", None, None, 0.05, 0.45, 0.2, 5000, 6000),
    "hh": ("H", None, None, 0.06, 0.0, 0.0, 0, 0),
    "p": ("P", None, None, 0.07, 0.0, 0.5, 1200, 2500),
    "t": ("P", None, None, 0.07, 0.0, 0.8, 4500, 3000),
    "k": ("P", None, None, 0.08, 0.0, 0.7, 2200, 1500),
    "b": ("B", None, None, 0.06, 0.0, 0.35, 1200, 2500),
    "d": ("B", None, None, 0.06, 0.0, 0.5, 4000, 3000),
    "g": ("B", None, None, 0.06, 0.0, 0.45, 2200, 1500),
    "ch": ("C", None, None, 0.12, 0.0, 1.0, 3200, 1800),
    "jh": ("C", None, None, 0.10, 0.2, 0.8, 3200, 1800),
}
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}
VOWELS = [p for p, v in PHONES.items() if v[0] in "VD"]
ASPIRATION_AMP = 0.25     # 'hh' and voiceless-plosive aspiration (noise through the formants)
VOICE_BAR_AMP = 0.06      # voicing during a voiced plosive's closure
BURST_S, ASPIRATION_S, CLOSURE_FRACTION = 0.012, 0.04, 0.6

# Syllable structure for random "sentences": onsets (incl. clusters), codas.
ONSETS = ["", "p", "t", "k", "b", "d", "g", "m", "n", "f", "s", "sh", "th", "v", "z", "hh", "l", "r",
          "w", "y", "ch", "jh", "dh", "s t", "s p", "s k", "t r", "p r", "k r", "b r", "g r", "d r",
          "p l", "k l", "b l", "f l", "f r", "s l", "s w"]
CODAS = ["", "", "p", "t", "k", "d", "g", "m", "n", "ng", "s", "z", "f", "v", "l", "r", "th", "sh",
         "n t", "n d", "s t", "l d", "k s", "m p"]


@dataclass(frozen=True)
class Speaker:
    """Voice parameters; `idio` is the speaker's own per-phoneme formant deviation (multiplicative)."""

    sid: int
    sex: str               # "m" | "f"
    f0: float              # mean F0, Hz
    f0_range: float        # intonation range, semitones
    vtl: float             # formant scale (shorter vocal tract → larger)
    tilt: float            # glottal low-pass pole in (0, 1): larger = darker voice
    breathiness: float     # breath-noise level relative to the pulses
    jitter: float          # per-frame relative F0 perturbation (std)
    rate: float            # duration multiplier (larger = slower)
    idio: np.ndarray       # (len(PHONES), 3) formant factors
    timbre: np.ndarray     # (len(TIMBRE_HZ),) dB: the voice's own smooth spectral colouring


def make_speakers(rng: np.random.Generator, n: int, start_id: int = 0, sexes: str = "mf",
                  timbre_db: float = TIMBRE_DB, accent: float = ACCENT) -> list[Speaker]:
    """`n` random speakers; sexes cycles through `sexes` ("m" for male only); timbre_db: spread of timbre;
    accent: spread (log std) of each speaker's own per-phoneme formant targets."""
    out = []
    for i in range(n):
        sex = sexes[i % len(sexes)]
        if sex == "m":
            f0, vtl, breath = rng.uniform(85, 150), rng.uniform(0.9, 1.08), rng.uniform(0.0, 0.25)
        else:
            f0, vtl, breath = rng.uniform(165, 255), rng.uniform(1.1, 1.25), rng.uniform(0.05, 0.4)
        out.append(Speaker(
            sid=start_id + i, sex=sex, f0=float(f0), f0_range=float(rng.uniform(2.0, 6.0)), vtl=float(vtl),
            tilt=float(rng.uniform(0.86, 0.97)), breathiness=float(breath),
            jitter=float(rng.uniform(0.004, 0.02)), rate=float(rng.uniform(0.85, 1.2)),
            idio=np.exp(rng.normal(0.0, accent, size=(len(PHONES), 3))).astype(np.float64),
            timbre=rng.normal(0.0, timbre_db, len(TIMBRE_HZ))))
    return out


def random_word(rng: np.random.Generator, max_syllables: int = 3) -> list[str]:
    phones: list[str] = []
    for _ in range(int(rng.integers(1, max_syllables + 1))):
        onset = ONSETS[int(rng.integers(len(ONSETS)))]
        coda = CODAS[int(rng.integers(len(CODAS)))]
        phones += onset.split() + [VOWELS[int(rng.integers(len(VOWELS)))]] + coda.split()
    return phones


def random_sentence(rng: np.random.Generator, seconds: float, pause_prob: float = 0.2) -> list[str]:
    """Words (phoneme lists joined, '_' = short pause) until the nominal duration reaches `seconds`."""
    phones: list[str] = []
    while nominal_seconds(phones) < seconds:
        phones += random_word(rng)
        if rng.random() < pause_prob:
            phones.append("_")
    return phones


def nominal_seconds(phones: list[str]) -> float:
    return float(sum(PAUSE_S if p == "_" else PHONES[p][3] for p in phones))



def _segments(phones: list[str], speaker: Speaker, rng: np.random.Generator, rate: float):
    """Expand phonemes into control segments: durations and per-segment targets (None formants filled in)."""
    segs = []  # (dur, F_start, F_end, av, af, fc, bw, ah, nasal)
    for p in phones:
        if p == "_":
            segs.append([PAUSE_S * rate * rng.uniform(0.6, 1.6), None, None, 0.0, 0.0, 0, 1, 0.0, 0.0])
            continue
        kind, fa, fb, dur, av, af, fc, bw = PHONES[p]
        dur = dur * rate * float(np.exp(rng.normal(0.0, 0.15)))
        if fa is not None:
            k = speaker.idio[PHONE_INDEX[p]] * np.exp(rng.normal(0.0, 0.03, 3))
            fa = np.array(fa, float) * k
            fb = np.array(fb, float) * k if fb is not None else fa
        if kind in "VDAN":
            segs.append([dur, fa, fb, av, 0.0, 0, 1, 0.0, 1.0 if kind == "N" else 0.0])
        elif kind in "FZ":
            segs.append([dur, None, None, av, af, fc, bw, 0.0, 0.0])
        elif kind == "H":
            segs.append([dur, None, None, 0.0, 0.0, 0, 1, ASPIRATION_AMP, 0.0])
        elif kind in "PB":
            voiced = kind == "B"
            segs.append([dur * CLOSURE_FRACTION, None, None, VOICE_BAR_AMP if voiced else 0.0, 0.0, 0, 1, 0.0, 0.0])
            segs.append([BURST_S, None, None, 0.0, af, fc, bw, 0.0, 0.0])
            if not voiced:
                segs.append([ASPIRATION_S * rate, None, None, 0.0, 0.0, 0, 1, ASPIRATION_AMP, 0.0])
        elif kind == "C":
            segs.append([dur * 0.4, None, None, 0.0, 0.0, 0, 1, 0.0, 0.0])
            segs.append([dur * 0.6, None, None, av, af, fc, bw, 0.0, 0.0])
    # Segments without formants take the next voiced target (anticipation), else the previous, else schwa.
    nxt = None
    for s in reversed(segs):
        if s[1] is None:
            s[1], s[2] = (nxt, nxt) if nxt is not None else (None, None)
        else:
            nxt = s[1]
    prev = np.array(PHONES["ah"][1], float)
    for s in segs:
        if s[1] is None:
            s[1], s[2] = prev, prev
        else:
            prev = s[2]
    return segs


def synthesize(phones: list[str], speaker: Speaker, rng: np.random.Generator, sr: int = 16000,
               rate: float = 1.0, f0_scale: float = 1.0) -> np.ndarray:
    """Speak a phoneme list ('_' = pause) with `speaker`; returns float32 at `sr`, RMS at RMS_DBFS."""
    hop = int(round(sr * FRAME_S))
    n_fft = hop * WINDOW_FRAMES
    segs = _segments(phones, speaker, rng, speaker.rate * rate)
    n = np.array([max(1, int(round(s[0] / FRAME_S))) for s in segs])
    idx = np.repeat(np.arange(len(segs)), n)
    T = int(n.sum())
    frac = (np.arange(T) - np.repeat(np.cumsum(n) - n, n) + 0.5) / n[idx]
    fa = np.stack([s[1] for s in segs])[idx]
    fb = np.stack([s[2] for s in segs])[idx]
    formants = (fa + (fb - fa) * frac[:, None]) * speaker.vtl
    sig_f, sig_a = COARTIC_S / FRAME_S, AMP_SMOOTH_S / FRAME_S
    formants = gaussian_filter1d(formants, sig_f, axis=0, mode="nearest")
    formants = np.concatenate([formants, np.full((T, 1), F4_HZ * speaker.vtl)], axis=1)
    av, af, fc, bw, ah, nasal = (np.array([s[k] for s in segs], float)[idx] for k in range(3, 9))
    av, af, ah, nasal = (gaussian_filter1d(a, sig_a, mode="nearest") for a in (av, af, ah, nasal))
    fc = np.where(fc > 0, fc * np.sqrt(speaker.vtl), 1.0)

    # Source: F0 contour → pulse train → spectral tilt; breath noise; white noise for frication.
    t = np.arange(T) / T
    contour = 0.5 - t + _accents(rng, T)
    f0 = speaker.f0 * f0_scale * 2.0 ** (speaker.f0_range / 12.0 * contour)
    f0 = f0 * np.exp(rng.normal(0.0, speaker.jitter, T))
    n_samples = T * hop
    f0_s = np.interp(np.arange(n_samples) / hop, np.arange(T), f0)
    phase = np.cumsum(f0_s) / sr + rng.random()
    pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])).astype(np.float64)
    voiced = lfilter([1.0 - speaker.tilt], [1.0, -speaker.tilt], pulses)
    voiced = voiced / (np.sqrt(np.mean(voiced ** 2)) + 1e-12)
    voiced = voiced + speaker.breathiness * rng.standard_normal(n_samples)
    noise = rng.standard_normal(n_samples)

    # Filter: per-frame envelopes on the STFT grid (frames of the STFT ↔ control frames).
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32)[None, :]
    f2 = freqs ** 2
    den = np.ones((T, freqs.shape[1]), np.float32)
    for k, bk in enumerate(BANDWIDTHS_HZ):
        fk = formants[:, k:k + 1].astype(np.float32)
        den *= _resonance_den(f2, fk ** 2, freqs * np.float32(bk))
    h_formant = 1.0 / np.sqrt(den)
    fz, bz = NASAL_ZERO
    zero = np.sqrt(_resonance_den(f2, np.float32(fz ** 2), freqs * np.float32(bz)))
    nas = nasal[:, None].astype(np.float32)
    h_voiced = h_formant * (1.0 - nas + nas * zero) * av[:, None].astype(np.float32)
    fbw = freqs * bw[:, None].astype(np.float32)
    band = np.sqrt(1.0 / _resonance_den(f2, fc[:, None].astype(np.float32) ** 2, fbw)) * (fbw / fc[:, None] ** 2)
    h_noise = af[:, None].astype(np.float32) * band * FRICATION_GAIN + ah[:, None].astype(np.float32) * h_formant

    colour = (10 ** (np.interp(np.log(np.maximum(freqs, 50.0)), np.log(TIMBRE_HZ), speaker.timbre) / 20)
              ).astype(np.float32)
    h_voiced, h_noise = h_voiced * colour, h_noise * colour
    spec = _stft(np.stack([voiced, noise]), n_fft, hop)[:, :T]          # (2, T, F)
    y = _istft(spec[0] * h_voiced + spec[1] * h_noise, n_fft, hop, n_samples)
    y = y + 10 ** (NOISE_FLOOR_DB / 20) * np.sqrt(np.mean(y ** 2)) * rng.standard_normal(n_samples)
    return set_level(y)


def _resonance_den(f2: np.ndarray, fk2: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """|1 - f²/Fk² + j f·Bk/Fk²|²: squared inverse gain of a unity-DC-gain resonance at Fk, bandwidth Bk."""
    return (1.0 - f2 / fk2) ** 2 + fb ** 2 / fk2 ** 2


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred STFT of (B, N) with a periodic Hann window → (B, frames, n_fft // 2 + 1)."""
    xp = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)])
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[:, ::hop]
    return scipy_fft.rfft((frames * _hann(n_fft)).astype(np.float32), axis=-1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of `_stft` for one signal (n_fft a multiple of hop)."""
    w = _hann(n_fft)
    frames = scipy_fft.irfft(spec, n=n_fft, axis=-1) * w                # (T, n_fft)
    T, k = frames.shape[0], n_fft // hop
    out = np.zeros((T + k - 1, hop))
    norm = np.zeros((T + k - 1, hop))
    blocks, wb = frames.reshape(T, k, hop), (w ** 2).reshape(k, hop)
    for j in range(k):
        out[j:j + T] += blocks[:, j]
        norm[j:j + T] += wb[j]
    y = (out / np.maximum(norm, 1e-8)).ravel()[n_fft // 2:]
    return np.pad(y, (0, max(0, length - len(y))))[:length]


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _accents(rng: np.random.Generator, T: int) -> np.ndarray:
    """Smooth pitch accents: a few Gaussian bumps at random places (about one per 0.5 s)."""
    k = max(1, int(round(T * FRAME_S / 0.5)))
    centres = rng.uniform(0, T, k)
    heights = rng.uniform(0.0, 1.0, k)
    width = 0.12 / FRAME_S
    x = np.arange(T)[:, None]
    return (heights * np.exp(-0.5 * ((x - centres) / width) ** 2)).sum(1)


def set_level(y: np.ndarray, rms_dbfs: float = RMS_DBFS) -> np.ndarray:
    y = np.asarray(y, np.float64)
    rms = np.sqrt(np.mean(y ** 2)) + 1e-12
    y = y * (10 ** (rms_dbfs / 20) / rms)
    peak = np.max(np.abs(y)) if y.size else 0.0
    if peak > PEAK_MAX:
        y = y * (PEAK_MAX / peak)
    return y.astype(np.float32)


def speak_seconds(speaker: Speaker, rng: np.random.Generator, seconds: float, sr: int = 16000,
                  pause_prob: float = 0.2) -> tuple[np.ndarray, list[str]]:
    """A random sentence of about `seconds` (exact length: cropped or padded with silence)."""
    phones = random_sentence(rng, seconds / speaker.rate, pause_prob)
    y = synthesize(["_"] + phones + ["_"], speaker, rng, sr)
    return fit_length(y, int(round(seconds * sr)), rng), phones


def room_noise(n: int, ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n samples of the synthesiser's room noise floor, relative to the level of `ref`."""
    rms = np.sqrt(np.mean(np.asarray(ref, np.float64) ** 2)) if len(ref) else 10 ** (RMS_DBFS / 20)
    return (10 ** (NOISE_FLOOR_DB / 20) * rms * rng.standard_normal(n)).astype(np.float32)


def fit_length(y: np.ndarray, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Crop to n samples, or pad (with room noise when `rng` is given, else zeros)."""
    if len(y) >= n:
        return np.asarray(y[:n], np.float32)
    pad = room_noise(n - len(y), y, rng) if rng is not None else np.zeros(n - len(y), np.float32)
    return np.concatenate([np.asarray(y, np.float32), pad])


def channel_tilt(y: np.ndarray, db_per_octave: float, ref_hz: float = 1000.0, sr: int = 16000) -> np.ndarray:
    """A recording channel's spectral tilt (dB per octave around ref_hz), keeping the RMS."""
    if db_per_octave == 0.0:
        return np.asarray(y, np.float32)
    spec = scipy_fft.rfft(np.asarray(y, np.float64))
    f = np.maximum(np.fft.rfftfreq(len(y), 1.0 / sr), 50.0)
    out = scipy_fft.irfft(spec * 10 ** (db_per_octave * np.log2(f / ref_hz) / 20), n=len(y))
    return (out * (np.sqrt(np.mean(np.asarray(y, np.float64) ** 2)) / (np.sqrt(np.mean(out ** 2)) + 1e-12))
            ).astype(np.float32)
