"""Speech synthesiser and noise bank: shapes, determinism, calibration of mixing."""

import numpy as np
import pytest

from dlsys.data.audio.noise import NOISE_KINDS, make_noise, scale_to_snr
from dlsys.data.audio.sets import mix
from dlsys.data.audio.speech import make_speakers, speak_seconds, synthesize
from dlsys.data.audio.keywords import COMMANDS, phones
from dlsys.evaluation.snr import snr_db


def test_at_least_ten_noise_kinds_each_valid_and_distinct():
    assert len(NOISE_KINDS) >= 10
    spectra = {}
    for kind in NOISE_KINDS:
        x = make_noise(kind, 16000, 16000, np.random.default_rng(1))
        assert x.dtype == np.float32 and x.shape == (16000,) and np.isfinite(x).all()
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
        s = np.log(np.abs(np.fft.rfft(x))[:8000].reshape(-1, 125).mean(1) + 1e-9)  # 64 coarse bands
        spectra[kind] = s - s.mean()
    kinds = list(spectra)
    for i, a in enumerate(kinds):  # no two kinds share a spectral shape
        for b in kinds[i + 1:]:
            assert np.abs(spectra[a] - spectra[b]).max() > 0.5, (a, b)


def test_speech_has_voiced_harmonics_at_speaker_f0_and_silences():
    spk = make_speakers(np.random.default_rng(0), 2)
    y = synthesize(["_", "aa", "_"], spk[0], np.random.default_rng(0), 16000)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    frames = y[: len(y) // 128 * 128].reshape(-1, 128)
    energy = 10 * np.log10((frames.astype(np.float64) ** 2).mean(1) + 1e-12)
    assert energy.max() - energy.min() > 40  # pauses are much quieter than the vowel
    mid = y[np.argmax(np.repeat(energy, 128)) - 2048:][:4096].astype(np.float64)
    ac = np.correlate(mid, mid, "full")[4095:]
    lo, hi = int(16000 / 400), int(16000 / 60)
    f0 = 16000 / (lo + np.argmax(ac[lo:hi]))
    assert abs(f0 - spk[0].f0) / spk[0].f0 < 0.25


def test_deterministic_under_seed_and_different_across_seeds():
    def run(seed):
        rng = np.random.default_rng(seed)
        spk = make_speakers(rng, 1)[0]
        return speak_seconds(spk, rng, 1.0)[0], make_noise("chip_crunch", 4000, 16000, rng)

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_speak_seconds_exact_length():
    rng = np.random.default_rng(0)
    spk = make_speakers(rng, 1)[0]
    assert len(speak_seconds(spk, rng, 1.01125)[0]) == 16180


def test_mix_exact_sum_and_snr():
    rng = np.random.default_rng(0)
    spk = make_speakers(rng, 1)[0]
    clean, _ = speak_seconds(spk, rng, 2.0)
    for snr in (-5.0, 6.5):
        s, n, x = mix(clean, make_noise("chip_crunch", len(clean), 16000, rng), snr)
        np.testing.assert_array_equal(x, s + n)
        assert np.max(np.abs(x)) <= 1.0
        assert abs(snr_db(s, x) - snr) < 0.05
    noise = scale_to_snr(np.ones(10), np.ones(10), 0.0)
    assert np.allclose(noise, 1.0)


def test_keyword_lexicon_covers_commands():
    assert len(COMMANDS) == 10
    for w in COMMANDS:
        assert phones(w)
