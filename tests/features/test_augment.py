"""Augmentations and pretext transforms, pixel-exact on tiny images."""

import numpy as np
import pytest
import torch

from dlsys.features.augment import (AUGMENT_NAMES, augment_set, augment_views, brighten, darken, labelled_split,
                                    mirror, pick_views, rot90_ccw, rotation_pretext, to_signed, to_unit, upside_down,
                                    validation_split)


def tiny() -> torch.Tensor:
    # One 1-channel 2×3 image: [[0.0, 0.5, 0.95], [0.1, 0.2, 1.0]] as NCHW.
    return torch.tensor([[[[0.0, 0.5, 0.95], [0.1, 0.2, 1.0]]]])


def test_brighter_clips_at_one_and_darker_scales():
    x = tiny()
    assert torch.allclose(brighten(x, 1.1), torch.tensor([[[[0.0, 0.55, 1.0], [0.11, 0.22, 1.0]]]]))
    assert torch.allclose(darken(x, 0.9), torch.tensor([[[[0.0, 0.45, 0.855], [0.09, 0.18, 0.9]]]]))


def test_mirror_is_left_right():
    assert torch.equal(mirror(tiny()), torch.tensor([[[[0.95, 0.5, 0.0], [1.0, 0.2, 0.1]]]]))


def test_augment_set_order_and_labels():
    x = torch.rand(3, 3, 4, 4)
    y = torch.tensor([7, 1, 4])
    xa, ya = augment_set(x, y, 1.1, 0.9)
    assert xa.shape == (12, 3, 4, 4)
    assert torch.equal(xa[:3], x)
    assert torch.equal(xa[3:6], torch.clamp(1.1 * x, max=1.0))
    assert torch.equal(xa[6:9], 0.9 * x)
    assert torch.equal(xa[9:], x.flip(-1))
    assert ya.tolist() == [7, 1, 4] * 4


def test_unit_and_signed_ranges():
    raw = np.array([[[[0, 255, 51]]]], dtype=np.uint8)  # N=1, H=1, W=1, C=3
    u = to_unit(raw)
    assert u.shape == (1, 3, 1, 1)
    assert torch.allclose(u.flatten(), torch.tensor([0.0, 1.0, 0.2]))
    assert torch.allclose(to_signed(u).flatten(), torch.tensor([-1.0, 1.0, -0.6]))


def test_upside_down_vs_rot90_ccw_on_an_asymmetric_image():
    # [[1, 2],
    #  [3, 4]]
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert upside_down(x).flatten().tolist() == [3.0, 4.0, 1.0, 2.0]
    # 90° counter-clockwise: the right column becomes the top row.
    assert rot90_ccw(x).flatten().tolist() == [2.0, 4.0, 1.0, 3.0]
    # A non-square image: a 2×3 becomes 3×2 with its top-right corner at the top-left.
    r = rot90_ccw(tiny())
    assert r.shape == (1, 1, 3, 2)
    assert torch.equal(r[0, 0], torch.tensor([[0.95, 1.0], [0.5, 0.2], [0.0, 0.1]]))


def test_rotation_pretext_labels():
    x = torch.rand(5, 3, 8, 8)
    xs, ys = rotation_pretext(x)
    assert ys.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert torch.equal(xs[:5], x)
    assert torch.equal(xs[5:10], x.flip(-2))
    assert torch.equal(xs[10:], torch.rot90(x, 1, dims=[-2, -1]))


def test_labelled_images_are_disjoint_from_pretext_images():
    pre, lab = labelled_split(10_000, 500)
    assert len(lab) == 500 and lab.tolist() == list(range(9_500, 10_000))
    assert len(pre) == 9_500 and not set(pre.tolist()) & set(lab.tolist())


def test_validation_split_is_seeded_and_disjoint():
    tr, va = validation_split(100, 10, seed=0)
    tr2, va2 = validation_split(100, 10, seed=0)
    assert np.array_equal(va, va2) and len(va) == 10 and len(tr) == 90
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(100))
    assert not np.array_equal(va, validation_split(100, 10, seed=1)[1])


def test_views_by_name_are_the_augmentations_in_the_order_asked():
    x = torch.rand(2, 3, 4, 5)
    views = augment_views(1.1, 0.9)
    assert tuple(views) == AUGMENT_NAMES
    picked = pick_views(["mirrored", "original", "darker"], 1.1, 0.9)
    assert torch.equal(picked[0](x), mirror(x)) and torch.equal(picked[1](x), x)
    assert torch.equal(picked[2](x), darken(x, 0.9))
    assert torch.equal(views["brighter"](x), brighten(x, 1.1))


@pytest.mark.parametrize("names, problem", [([], "none given"), (["original", "original"], r"repeated \['original'\]"),
                                           (["original", "rotated"], r"unknown \['rotated'\]")])
def test_views_refuse_an_empty_list_repeats_and_unknown_names(names, problem):
    with pytest.raises(ValueError, match=problem + "; expected distinct names"):
        pick_views(names, 1.1, 0.9)
