import librosa
import numpy as np
import pytest
import torch

from dlsys.features.stft import istft, istft_many, n_frames, stft, stft_many


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
