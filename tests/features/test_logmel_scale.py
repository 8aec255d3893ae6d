"""Feature scales: what a gain on the audio does to the keyword-spotting log-mels, and that every KWS split
goes through one extractor (the same function, batched or not, at any level)."""

import numpy as np
import pytest
import torch

from dlsys.features.logmel import LogMel, logmel_batched


def _clip(seed: int, n: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 440, 660, 880), 1))
    return (0.5 * tone * np.hanning(n) + 0.05 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("gain", [0.1, 10.0])
def test_a_gain_on_the_audio_is_an_offset_of_the_log_mel(gain):
    """log10(c² · mel + eps) = log10(mel) + 2 log10(c) wherever mel ≫ eps: the model sees level as an offset,
    identically for training, validation and test clips (one extractor)."""
    lm = LogMel(sr=16000, n_fft=512, frame=400, hop=160, n_mels=40, fmin=50, fmax=7000, eps=1e-6)
    x = np.stack([_clip(0), _clip(1)])
    base = logmel_batched(x, lm, "cpu")
    scaled = logmel_batched(gain * x, lm, "cpu")
    floor = np.log10(1e-6) + 3  # mel ≥ 1000 eps: the eps shifts the log by < 0.0005
    loud = (base > floor) & (base + 2 * np.log10(gain) > floor)
    assert loud.float().mean() > 0.1
    torch.testing.assert_close(scaled[loud] - base[loud], torch.full_like(base[loud], 2 * np.log10(gain)),
                               atol=1e-3, rtol=0)
    one = logmel_batched(gain * x[1:], lm, "cpu", batch=1)  # batched or alone: the same features
    torch.testing.assert_close(one[0], scaled[1], atol=1e-5, rtol=1e-5)
