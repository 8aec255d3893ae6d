import math

import pytest
import torch

from dlsys.models.ensemble import ProbabilityAverage


class Fixed(torch.nn.Module):
    """A classifier that returns the same logits for every input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_the_output_is_the_log_of_the_members_mean_probability():
    a, b = [2.0, 0.0, -1.0], [0.0, 1.0, 0.5]
    out = ProbabilityAverage([Fixed(a), Fixed(b)])(torch.zeros(4, 1))
    pa = [math.exp(v) / sum(math.exp(w) for w in a) for v in a]
    pb = [math.exp(v) / sum(math.exp(w) for w in b) for v in b]
    expected = torch.tensor([math.log((x + y) / 2) for x, y in zip(pa, pb)])
    assert out.shape == (4, 3)
    assert torch.allclose(out, expected.expand(4, 3), atol=1e-6)
    assert torch.allclose(out.exp().sum(1), torch.ones(4))  # log-probabilities


def test_averaging_probabilities_is_not_averaging_logits():
    # One member is sure of class 0 (logit margin 10), two are fairly sure of class 1 (margin 3): the mean
    # of the logits picks class 0 (3.33 vs 2), the mean of the probabilities class 1 (p0 = 0.37).
    members = [Fixed([10.0, 0.0]), Fixed([0.0, 3.0]), Fixed([0.0, 3.0])]
    x = torch.zeros(1, 1)
    assert torch.stack([m(x) for m in members]).mean(0).argmax(1).item() == 0
    out = ProbabilityAverage(members)(x)
    assert out.argmax(1).item() == 1
    assert out.exp()[0, 0].item() == pytest.approx((1 / (1 + math.exp(-10)) + 2 / (1 + math.exp(3))) / 3)


def test_one_member_predicts_as_that_member():
    member = Fixed([0.3, -0.2, 1.5])
    x = torch.zeros(2, 1)
    assert torch.allclose(ProbabilityAverage([member])(x), member(x).log_softmax(1), atol=1e-6)


def test_a_class_every_member_rules_out_stays_finite():
    # Margins of 120 and 130 logits: the rejected classes' probabilities underflow to 0 in float32, and
    # the log of the averaged probabilities would be -inf (cross-entropy inf, accuracy "not finite").
    members = [Fixed([120.0, 0.0, -5.0]), Fixed([130.0, 0.0, 0.0])]
    out = ProbabilityAverage(members)(torch.zeros(2, 1))
    assert bool(torch.isfinite(out).all()) and out.argmax(1).tolist() == [0, 0]
    assert out[0, 1].item() == pytest.approx(math.log((math.exp(-120) + math.exp(-130)) / 2), rel=1e-4)
    assert torch.isfinite(torch.nn.functional.cross_entropy(out, torch.tensor([1, 2])))


def test_an_empty_ensemble_is_refused():
    with pytest.raises(ValueError, match="at least one member"):
        ProbabilityAverage([])
