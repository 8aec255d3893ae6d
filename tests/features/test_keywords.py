import numpy as np
import pytest
import torch

from dlsys.features.keywords import mix_background, time_shift


def _reference(clip: np.ndarray, shift: int) -> np.ndarray:
    """One clip shifted by `shift` frames, the edge frame repeated into the gap, written frame by frame."""
    out = np.empty_like(clip)
    for t in range(clip.shape[1]):
        out[:, t] = clip[:, min(max(t - shift, 0), clip.shape[1] - 1)]
    return out


@pytest.mark.parametrize("max_frames", [1, 3, 9])
def test_each_clip_is_its_own_shift_of_the_original(max_frames):
    x = torch.randn(64, 5, 12, generator=torch.Generator().manual_seed(0))
    y = time_shift(x, max_frames, torch.Generator().manual_seed(1))
    seen = []
    for clip, out in zip(x.numpy(), y.numpy()):
        matches = [s for s in range(-max_frames, max_frames + 1) if np.array_equal(out, _reference(clip, s))]
        assert len(matches) == 1, matches  # exactly one admissible shift explains it
        seen.append(matches[0])
    # both directions and the extremes occur over 64 clips: not a constant or one-sided shift
    assert min(seen) == -max_frames and max(seen) == max_frames


def test_no_shift_returns_the_batch_and_draws_nothing():
    x = torch.randn(4, 3, 7)
    g = torch.Generator().manual_seed(5)
    assert time_shift(x, 0, g) is x
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


def test_the_same_generator_state_gives_the_same_shifts():
    x = torch.randn(16, 4, 10)
    a = time_shift(x, 4, torch.Generator().manual_seed(3))
    b = time_shift(x, 4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)


EPS = 1e-6


def _log(mel: torch.Tensor) -> torch.Tensor:
    return torch.log10(mel + EPS)


def test_mixing_adds_mel_powers_of_one_background_clip_at_a_gain_in_range():
    g = torch.Generator().manual_seed(0)
    speech = torch.rand(200, 4, 6, generator=g) + 0.1
    noise = torch.rand(3, 4, 6, generator=g) * 10.0 ** torch.arange(3.0)[:, None, None]  # levels 1, 10, 100
    out = 10.0 ** mix_background(_log(speech), _log(noise), 0.5, EPS, torch.Generator().manual_seed(1)) - EPS
    added = out - speech
    gains = []
    for clip in added:
        # the added power is one background clip times one gain, bin for bin
        fits = [(k, float((clip / noise[k]).mean())) for k in range(3)
                if torch.allclose(clip, noise[k] * (clip / noise[k]).mean(), rtol=1e-3, atol=1e-5)]
        assert len(fits) == 1, fits
        gains.append(fits[0][1])
    gains = np.array(gains)
    assert gains.min() >= 0 and gains.max() <= 0.5 + 1e-4
    assert gains.max() > 0.4 and gains.min() < 0.1  # spread over the range, not a constant


def test_no_mixing_returns_the_batch_and_draws_nothing():
    x = torch.randn(4, 3, 7)
    g = torch.Generator().manual_seed(5)
    assert mix_background(x, torch.randn(2, 3, 7), 0.0, EPS, g) is x
    assert mix_background(x, torch.zeros(0, 3, 7), 1.0, EPS, g) is x
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


def test_silence_plus_noise_is_the_scaled_noise():
    """Undoing the log must remove the floor: a silent clip (mel 0) mixed at gain c reads as log10(c·N + eps)."""
    noise = torch.rand(1, 4, 6) + 0.5
    silent = _log(torch.zeros(8, 4, 6))
    out = mix_background(silent, _log(noise), 2.0, EPS, torch.Generator().manual_seed(2))
    ratio = (10.0 ** out - EPS) / noise
    per_clip = ratio.flatten(1)
    assert torch.allclose(per_clip, per_clip[:, :1].expand_as(per_clip), rtol=1e-4)
