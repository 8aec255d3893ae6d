import numpy as np
import pytest
import torch

from dlsys.features.logmel import LogMel, fit_length, logmel_batched, n_frames


def test_lecture_frame_count_for_one_second():
    # 25 ms frames, 10 ms hop, 1 s at 16 kHz, no centring: 98 frames.
    assert n_frames(16000, 400, 160) == 98
    ext = LogMel(sr=16000, n_fft=512, frame=400, hop=160, n_mels=40)
    out = ext(torch.randn(3, 16000))
    assert out.shape == (3, 40, 98)


def test_log10_of_mel_power_plus_eps_matches_librosa():
    import librosa

    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000).astype(np.float32)
    ext = LogMel(sr=16000, n_fft=512, frame=400, hop=160, n_mels=40, eps=1e-6)
    got = ext(torch.from_numpy(x)[None])[0].numpy()
    # librosa centres the 400-sample window in its 512-sample frame: pad 56 samples to align frames.
    mel = librosa.feature.melspectrogram(y=np.pad(x, (56, 56)), sr=16000, n_fft=512, hop_length=160, win_length=400,
                                         window="hann", center=False, power=2.0, n_mels=40)
    np.testing.assert_allclose(got, np.log10(mel + 1e-6), atol=2e-3)


def test_silence_gives_log10_eps():
    ext = LogMel(eps=1e-6)
    assert torch.allclose(ext(torch.zeros(1, 16000)), torch.tensor(-6.0))


def test_batched_equals_one_by_one():
    x = np.random.default_rng(1).standard_normal((5, 16000)).astype(np.float32)
    ext = LogMel()
    batched = logmel_batched(x, ext, torch.device("cpu"), batch=2)
    single = torch.cat([ext(torch.from_numpy(r)[None]) for r in x])
    assert torch.allclose(batched, single, atol=1e-5)


def test_pad_and_crop_to_one_second():
    assert fit_length(np.ones(100), 160).shape == (160,)
    assert fit_length(np.ones(100), 160)[100:].sum() == 0
    np.testing.assert_array_equal(fit_length(np.arange(200), 160), np.arange(160))
    assert fit_length(torch.ones(2, 10), 16).shape == (2, 16)


def test_too_short_signal_is_an_error():
    with pytest.raises(ValueError):
        n_frames(100, 400, 160)
