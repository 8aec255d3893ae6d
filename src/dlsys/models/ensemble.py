"""An ensemble of classifiers that averages their class probabilities.

Its forward returns the log of the members' mean softmax: log-probabilities, so the argmax is the
ensemble's prediction and `CrossEntropyLoss` would read them as logits unchanged (softmax of a
log-probability vector is that vector's probabilities). Computed in the log domain (logsumexp of the
members' log-softmax), so a class every member rules out by a wide margin gets a very negative but
finite value rather than log(0).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ProbabilityAverage(nn.Module):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([m(x).log_softmax(dim=-1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))
