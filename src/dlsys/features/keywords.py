"""Keyword-spotting clip sets: the 'background' class cut from long noise recordings, split-disjoint.

Speech Commands ships a few minutes of background noise, not 1-s clips; the lecture cuts random 1-s
segments at random volume. Each noise file is divided into contiguous parts in proportion to the split
sizes, so no noise sample is shared between train, validation and test (a segment seen in training
would otherwise make the background test class trivially easy).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from dlsys.features.logmel import fit_length

SPLITS = ("train", "validation", "testing")


def background_segments(noises: Sequence[np.ndarray], counts: dict[str, int], length: int,
                        gain: tuple[float, float], rng: np.random.Generator,
                        splits: Sequence[str] = SPLITS) -> dict[str, np.ndarray]:
    """`counts[split]` clips of `length` samples per split, each from a random file's share for that
    split, scaled by a log-uniform gain in [gain[0], gain[1]]."""
    total = sum(counts.values())
    out = {}
    lo = 0.0
    for split in splits:
        share = counts[split] / total if total else 0.0
        clips = []
        for _ in range(counts[split]):
            x = noises[int(rng.integers(len(noises)))]
            a, b = int(lo * len(x)), int((lo + share) * len(x))
            start = int(rng.integers(a, max(a + 1, b - length)))
            seg = fit_length(x[start:min(start + length, b)], length)
            clips.append(seg * 10 ** rng.uniform(np.log10(gain[0]), np.log10(gain[1])))
        out[split] = np.stack(clips).astype(np.float32) if clips else np.zeros((0, length), np.float32)
        lo += share
    return out


def time_shift(x: torch.Tensor, max_frames: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each clip of a (B, n_mels, frames) batch by its own random whole number of frames in
    [-max_frames, max_frames], repeating its first or last frame into the gap: a word said a little
    earlier or later is the same word (batched, on x's device; 0 returns x unchanged)."""
    if max_frames <= 0:
        return x
    shift = torch.randint(-max_frames, max_frames + 1, (len(x),), generator=generator).to(x.device)
    frames = torch.arange(x.shape[-1], device=x.device)
    index = (frames[None, :] - shift[:, None]).clamp(0, x.shape[-1] - 1)
    return torch.gather(x, -1, index[:, None, :].expand(-1, x.shape[1], -1))


def mix_background(x: torch.Tensor, background: torch.Tensor, max_gain: float, eps: float,
                   generator: torch.Generator) -> torch.Tensor:
    """Add to each clip of a (B, n_mels, frames) log-mel batch, log10(mel + eps), a random clip of
    `background` (same layout) at a gain drawn uniformly in [0, max_gain]: mel powers add, as speech and
    noise powers do on average (their cross term has mean zero). The lecture's words come from many
    rooms; the kit's 347 training clips from few. 0 (or no background) returns x unchanged."""
    if max_gain <= 0 or len(background) == 0:
        return x
    pick = torch.randint(0, len(background), (len(x),), generator=generator).to(x.device)
    gain = (max_gain * torch.rand(len(x), generator=generator)).to(x.device)[:, None, None]
    power = (10.0 ** x - eps).clamp_min(0.0) + gain * (10.0 ** background[pick] - eps).clamp_min(0.0)
    return torch.log10(power + eps)
