"""Keyword-spotting clip sets: the 'background' class cut from long noise recordings, split-disjoint.

Speech Commands ships a few minutes of background noise, not 1-s clips; the lecture cuts random 1-s
segments at random volume. Each noise file is divided into contiguous parts in proportion to the split
sizes, so no noise sample is shared between train, validation and test (a segment seen in training
would otherwise make the background test class trivially easy).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

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
