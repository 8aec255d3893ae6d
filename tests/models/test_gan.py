import pytest
import torch
from torch import nn

from dlsys.models.gan import (Discriminator, Generator, balanced_labels, centre_patch, one_hot, patch_penalty,
                              to_tanh_range, to_unit_range, wrong_labels)


def _linear_sizes(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_cgan_layer_sizes_from_the_course():
    g, d = Generator(100, 10, [200, 400]), Discriminator(10, [400, 200, 100], dropout=0.3)
    assert _linear_sizes(g) == [(110, 200), (200, 400), (400, 784)]
    assert _linear_sizes(d) == [(794, 400), (400, 200), (200, 100), (100, 1)]
    assert isinstance(g.net[-1], nn.Tanh)
    assert any(isinstance(m, nn.Dropout) for m in d.modules())


def test_conditioning_concatenation_shapes():
    g, d = Generator(100, 10, [200, 400]), Discriminator(10, [400, 200, 100])
    labels = torch.tensor([0, 3, 9])
    oh = one_hot(labels)
    assert oh.shape == (3, 10) and torch.equal(oh.argmax(1), labels) and torch.equal(oh.sum(1), torch.ones(3))
    x = g(torch.randn(3, 100), oh)
    assert x.shape == (3, 784) and x.min() >= -1 and x.max() <= 1
    assert d(x, oh).shape == (3,)
    # the imputer's discriminator sees images only
    assert Discriminator(0, [16])(torch.randn(4, 28, 28)).shape == (4,)


@pytest.mark.parametrize("n", [100, 37, 10, 3])
def test_balanced_labels(n):
    labels = balanced_labels(n, 10, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels, minlength=10)
    assert len(labels) == n and counts.sum() == n
    assert counts.max() - counts.min() <= 1
    if n >= 10:
        assert (counts >= n // 10).all()


def test_wrong_labels_are_never_right_and_cover_every_other_class():
    labels = torch.arange(10).repeat_interleave(900)
    wrong = wrong_labels(labels, 10, torch.Generator().manual_seed(0))
    assert wrong.shape == labels.shape and not (wrong == labels).any()
    assert wrong.min() >= 0 and wrong.max() <= 9
    for k in range(10):  # uniform over the 9 others: 100 expected each
        counts = torch.bincount(wrong[labels == k], minlength=10)
        assert counts[k] == 0 and counts[torch.arange(10) != k].min() > 60


def test_centre_patch_is_the_9_to_19_slice():
    x = torch.arange(2 * 784, dtype=torch.float32).reshape(2, 28, 28)
    patch = centre_patch(x.flatten(1))
    assert patch.shape == (2, 100)
    torch.testing.assert_close(patch, x[:, 9:19, 9:19].reshape(2, 100))


def test_patch_penalty_zero_iff_patch_matches():
    torch.manual_seed(0)
    fake = torch.rand(4, 784) * 2 - 1
    cond = centre_patch(fake).clone()
    assert patch_penalty(fake, cond).item() == 0.0
    outside = fake.clone().reshape(4, 28, 28)
    outside[:, :5] = 0.3  # changes outside the patch do not matter
    assert patch_penalty(outside.flatten(1), cond).item() == 0.0
    assert patch_penalty(fake, cond + 0.5).item() == pytest.approx(0.25)


def test_pixel_range_round_trip():
    x = torch.rand(10)
    torch.testing.assert_close(to_unit_range(to_tanh_range(x)), x)
