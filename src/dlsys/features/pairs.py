"""Pair sampling for speaker verification, exactly as the course specifies.

Rows of the utterance matrix are ordered by speaker, `per_speaker` rows each. For one speaker:
  * L positive pairs drawn from the C(per_speaker, 2) pairs of its own utterances (without replacement
    while L ≤ C(per_speaker, 2), with replacement beyond);
  * L negative pairs, each one of its utterances (without replacement while L ≤ per_speaker, with
    replacement beyond) with a uniformly random utterance of another speaker.
One minibatch per speaker, balanced L/L. Labels: 1 = same speaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


@dataclass
class Pairs:
    first: np.ndarray    # int64 row indices
    second: np.ndarray
    label: np.ndarray    # float32, 1 = same speaker

    def __len__(self) -> int:
        return len(self.label)


def speaker_pairs(speaker: int, n_speakers: int, per_speaker: int, L: int, rng: np.random.Generator) -> Pairs:
    """The balanced minibatch of 2L pairs for one speaker."""
    if n_speakers < 2 or per_speaker < 2:
        raise ValueError("need at least 2 speakers with at least 2 utterances each")
    if L < 1:
        raise ValueError("L must be >= 1")
    base = speaker * per_speaker
    ii, jj = np.triu_indices(per_speaker, k=1)
    n_pos = len(ii)
    pick = rng.choice(n_pos, size=L, replace=L > n_pos)
    pos_a, pos_b = base + ii[pick], base + jj[pick]
    own = base + rng.choice(per_speaker, size=L, replace=L > per_speaker)
    # A uniform row among the other speakers' rows: draw in [0, N - per_speaker) and skip our block.
    other = rng.integers(0, (n_speakers - 1) * per_speaker, size=L)
    other = np.where(other >= base, other + per_speaker, other)
    first = np.concatenate([pos_a, own]).astype(np.int64)
    second = np.concatenate([pos_b, other]).astype(np.int64)
    label = np.concatenate([np.ones(L), np.zeros(L)]).astype(np.float32)
    return Pairs(first, second, label)


def all_pairs(n_speakers: int, per_speaker: int, L: int, rng: np.random.Generator) -> Pairs:
    """Every speaker's minibatch concatenated (the fixed test set)."""
    parts = [speaker_pairs(s, n_speakers, per_speaker, L, rng) for s in range(n_speakers)]
    return Pairs(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("first", "second", "label")))


class PairBatches:
    """One minibatch per speaker, speakers in a fresh random order and fresh pairs every epoch."""

    def __init__(self, n_speakers: int, per_speaker: int, L: int, seed: int, device: torch.device | str = "cpu"):
        self.n_speakers, self.per_speaker, self.L = n_speakers, per_speaker, L
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return self.n_speakers

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for s in self.rng.permutation(self.n_speakers):
            p = speaker_pairs(int(s), self.n_speakers, self.per_speaker, self.L, self.rng)
            yield (torch.from_numpy(p.first).to(self.device), torch.from_numpy(p.second).to(self.device),
                   torch.from_numpy(p.label).to(self.device))
