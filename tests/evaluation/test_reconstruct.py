import math

import numpy as np
import torch

from dlsys.evaluation.reconstruct import (apply_mask, clip_audio, ideal_binary_mask, masked_istft_many,
                                          reconstruct, snr_report, snr_report_many, with_noisy_phase)
from dlsys.evaluation.snr import snr_db
from dlsys.features.stft import istft, stft


def _pair(n=12000, seed=0):
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
    s, noise = _pair()
    x = s + noise
    X = stft(x, 1024, 512)
    y = reconstruct(X, X.abs(), len(x), 1024, 512)
    assert y.shape == x.shape and float((y - x).abs().max()) < 1e-5


def test_oracle_mask_improves_snr_and_snri_is_the_difference():
    s, noise = _pair(seed=1)
    x = s + noise
    X, S, N = (stft(z, 1024, 512) for z in (x, s, noise))
    est = istft(apply_mask(X, ideal_binary_mask(S.abs(), N.abs())), len(x), 1024, 512)
    rep = snr_report(s, est, x)
    assert math.isclose(rep.snri[0], rep.snr[0] - rep.snr_in[0])
    assert math.isclose(rep.snr_in[0], snr_db(s, x))
    assert rep.snri[0] > 3.0  # the oracle mask removes most of the white noise


def test_batched_masks_match_per_file():
    pairs = [_pair(n, i) for i, n in enumerate([8000, 12000])]
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


def test_clip_audio_counts_and_limits():
    y, n = clip_audio(torch.tensor([0.5, 1.5, -2.0, 0.0]))
    assert n == 2 and y.max() < 1.0 and y.min() == -1.0 and y.dtype == np.float32
