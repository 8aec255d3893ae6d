import math

import librosa
import numpy as np
import pytest
import torch

from dlsys.evaluation.snr import snr_db, snr_report, snr_report_many
from dlsys.features.stft import (apply_mask, ideal_binary_mask, istft, istft_many, masked_istft_many, n_frames,
                                 reconstruct, stft, stft_many, with_noisy_phase)


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("n_fft,hop,length", [(1024, 512, 16000), (1024, 512, 16383), (512, 128, 5000),
                                              (256, 64, 1000), (1024, 256, 8193)])
def test_stft_matches_librosa(n_fft, hop, length):
    x = _signal(length)
    ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant")
    got = stft(torch.from_numpy(x), n_fft, hop).numpy()
    assert got.shape == ref.shape == (n_fft // 2 + 1, n_frames(length, hop))
    np.testing.assert_allclose(np.abs(got), np.abs(ref), atol=1e-4)
    np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.mark.parametrize("n_fft,hop", [(1024, 512), (512, 128)])
def test_round_trip_restores_signal(n_fft, hop):
    x = torch.from_numpy(_signal(12345))
    y = istft(stft(x, n_fft, hop), len(x), n_fft, hop)
    assert y.shape == x.shape
    assert float((y - x).abs().max()) < 1e-5


def test_batched_shapes():
    x = torch.from_numpy(np.stack([_signal(8000, s) for s in range(3)]))
    spec = stft(x, 1024, 512)
    assert spec.shape == (3, 513, n_frames(8000, 512)) and spec.is_complex()


def test_stft_many_equals_per_file_and_istft_many_inverts():
    lengths = [16000, 513, 20001, 7000, 1024]
    sigs = [_signal(n, i) for i, n in enumerate(lengths)]
    specs = stft_many(sigs, 1024, 512, batch_size=2)  # several batches, mixed lengths
    padded = torch.zeros(len(sigs), 513, max(s.shape[1] for s in specs), dtype=torch.complex64)
    for i, (s, S) in enumerate(zip(sigs, specs)):
        one = stft(torch.from_numpy(s), 1024, 512)
        assert S.shape == one.shape
        assert torch.allclose(S, one, atol=1e-5)
        padded[i, :, : S.shape[1]] = S
    y = istft_many(padded, lengths, 1024, 512)
    assert y.shape == (len(sigs), max(lengths))
    for i, s in enumerate(sigs):
        one = istft(specs[i], lengths[i], 1024, 512)
        assert torch.allclose(y[i, : lengths[i]], one, atol=1e-5)
        assert torch.allclose(y[i, : lengths[i]], torch.from_numpy(s), atol=1e-5)
        assert float(y[i, lengths[i]:].abs().sum()) == 0.0


def test_istft_many_is_per_signal_for_modified_spectra():
    """Masked spectra (not consistent STFTs) must still match the one-signal inverse exactly."""
    lengths = [9000, 15000]
    specs = stft_many([_signal(n, 7 + n) for n in lengths], 1024, 512)
    gen = torch.Generator().manual_seed(0)
    padded = torch.zeros(2, 513, specs[1].shape[1], dtype=torch.complex64)
    singles = []
    for i, S in enumerate(specs):
        m = torch.rand(S.shape, generator=gen)
        padded[i, :, : S.shape[1]] = S * m
        singles.append(istft(S * m, lengths[i], 1024, 512))
    y = istft_many(padded, lengths, 1024, 512)
    for i, one in enumerate(singles):
        assert torch.allclose(y[i, : lengths[i]], one, atol=1e-5)


# ---------------------------------------------------------------- masks and reconstruction

def _tone_and_noise(n=12000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    s = 0.4 * torch.sin(2 * math.pi * 300 * t) * torch.sin(2 * math.pi * 2 * t)
    noise = 0.05 * torch.randn(n, generator=gen)
    return s, noise


def test_ideal_binary_mask_definition():
    s = torch.tensor([[1.0, 2.0], [0.0, 3.0]])
    n = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    assert torch.equal(ideal_binary_mask(s, n), torch.tensor([[0.0, 1.0], [0.0, 0.0]]))  # strict >


def test_noisy_phase_guard_and_magnitude():
    mix = torch.tensor([3 + 4j, 0j, -1j], dtype=torch.complex64)
    out = with_noisy_phase(mix, torch.tensor([10.0, 2.0, 5.0]))
    assert torch.isfinite(torch.view_as_real(out)).all()
    assert torch.allclose(out, torch.tensor([6 + 8j, 2 + 0j, -5j], dtype=torch.complex64))


def test_reconstruct_with_mixture_magnitude_returns_mixture():
    s, noise = _tone_and_noise()
    x = s + noise
    X = stft(x, 1024, 512)
    y = reconstruct(X, X.abs(), len(x), 1024, 512)
    assert y.shape == x.shape and float((y - x).abs().max()) < 1e-5


def test_oracle_mask_improves_snr_and_snri_is_the_difference():
    s, noise = _tone_and_noise(seed=1)
    x = s + noise
    X, S, N = (stft(z, 1024, 512) for z in (x, s, noise))
    est = istft(apply_mask(X, ideal_binary_mask(S.abs(), N.abs())), len(x), 1024, 512)
    rep = snr_report(s, est, x)
    assert math.isclose(rep.snri[0], rep.snr[0] - rep.snr_in[0])
    assert math.isclose(rep.snr_in[0], snr_db(s, x))
    assert rep.snri[0] > 3.0  # the oracle mask removes most of the white noise


def test_batched_masks_match_per_file():
    pairs = [_tone_and_noise(n, i) for i, n in enumerate([8000, 12000])]
    mixes = [s + n for s, n in pairs]
    specs = [stft(x, 1024, 512) for x in mixes]
    t = max(S.shape[1] for S in specs)
    mix = torch.zeros(2, 513, t, dtype=torch.complex64)
    masks = torch.zeros(2, 513, t)
    clean = torch.zeros(2, 12000)
    noisy = torch.zeros(2, 12000)
    singles = []
    for i, (S, (s, n)) in enumerate(zip(specs, pairs)):
        m = ideal_binary_mask(stft(s, 1024, 512).abs(), stft(n, 1024, 512).abs())
        mix[i, :, : S.shape[1]], masks[i, :, : S.shape[1]] = S, m
        clean[i, : len(s)], noisy[i, : len(s)] = s, mixes[i]
        singles.append(istft(apply_mask(S, m), len(s), 1024, 512))
    lengths = [8000, 12000]
    est = masked_istft_many(mix, masks, lengths, 1024, 512)
    rep = snr_report_many(clean, est, noisy, lengths)
    for i, one in enumerate(singles):
        assert torch.allclose(est[i, : lengths[i]], one, atol=1e-5)
        assert math.isclose(rep.snr[i], snr_db(pairs[i][0], one), abs_tol=1e-3)
    assert math.isclose(rep.summary()["snr_db"], float(np.mean(rep.snr)))
