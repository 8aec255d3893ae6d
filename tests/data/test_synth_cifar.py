"""The synthetic CIFAR-10 generator: deterministic, balanced, native dtypes, upright scenes."""

import numpy as np
import pytest
import yaml

from dlsys.core import Params
from dlsys.core.errors import UserError
from dlsys.data import synth_cifar

from conftest import ROOT


@pytest.fixture(scope="module")
def group() -> Params:
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    return Params(data).sub("data.cifar10")


@pytest.fixture(scope="module")
def small(group):
    return synth_cifar.generate(60, 40, 3, group)


def test_shapes_dtypes_and_names(small):
    x_tr, y_tr, x_te, y_te, names = small
    assert x_tr.shape == (60, 32, 32, 3) and x_tr.dtype == np.uint8
    assert x_te.shape == (40, 32, 32, 3) and x_te.dtype == np.uint8
    assert y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert names == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert x_tr.std() > 20  # not blank images


def test_classes_are_balanced(small):
    _, y_tr, _, y_te, _ = small
    assert np.bincount(y_tr, minlength=10).tolist() == [6] * 10
    assert np.bincount(y_te, minlength=10).tolist() == [4] * 10


def test_deterministic_under_seed(group, small):
    again = synth_cifar.generate(60, 40, 3, group)
    for a, b in zip(small[:4], again[:4]):
        assert np.array_equal(a, b)
    other = synth_cifar.generate(60, 40, 4, group)
    assert not np.array_equal(small[0], other[0])


def test_train_and_test_use_different_streams(group, small):
    x_tr, _, x_te, y_te, _ = small
    # The test set does not depend on the training set's size, ...
    _, _, x_te2, y_te2, _ = synth_cifar.generate(30, 40, 3, group)
    assert np.array_equal(x_te, x_te2) and np.array_equal(y_te, y_te2)
    # ... and no test image repeats a training image.
    flat_tr = {bytes(im) for im in x_tr.reshape(len(x_tr), -1)}
    assert not any(bytes(im) in flat_tr for im in x_te.reshape(len(x_te), -1))


def test_scenes_are_upright(group):
    """Sky above, ground below: the top rows differ from the bottom rows consistently, so an upside-down
    image is detectable. Cheap check: the brightness gradient of the sky (lighter towards the horizon)
    and the sky/ground split make top and bottom halves statistically different in most images."""
    # The statistic reads colour (a blue sky), which `colour_jitter` scrambles on purpose at the default 1.0;
    # the layout under test does not depend on it, so it is read at 0.5.
    x, _, _, _, _ = synth_cifar.generate(200, 10, 0, _with(group, colour_jitter=0.5))
    top = x[:, :8].reshape(len(x), -1, 3).mean(1)
    bottom = x[:, -8:].reshape(len(x), -1, 3).mean(1)
    # The top (sky) is bluer than the bottom (ground) in the large majority of scenes.
    blue_excess_top = top[:, 2] - top[:, :2].mean(1)
    blue_excess_bottom = bottom[:, 2] - bottom[:, :2].mean(1)
    frac = np.mean(blue_excess_top > blue_excess_bottom)
    assert frac > 0.7
    # Flipping destroys it: the same statistic on flipped images is below one half.
    flipped = x[:, ::-1]
    top_f = flipped[:, :8].reshape(len(x), -1, 3).mean(1)
    bot_f = flipped[:, -8:].reshape(len(x), -1, 3).mean(1)
    assert np.mean(top_f[:, 2] - top_f[:, :2].mean(1) > bot_f[:, 2] - bot_f[:, :2].mean(1)) < 0.3


def test_bad_param_names_the_key(group):
    data = dict(group.as_dict())
    data["scale"] = [0.5, 0.1]
    with pytest.raises(UserError, match="data.cifar10.scale"):
        synth_cifar.generate(10, 10, 0, Params({"data": {"cifar10": data}}).sub("data.cifar10"))


def _with(group: Params, **values) -> Params:
    data = dict(group.as_dict())
    data.update(values)
    return Params({"data": {"cifar10": data}}).sub("data.cifar10")


def _sky_above_fraction(x: np.ndarray) -> float:
    top = x[:, :6].reshape(len(x), -1, 3).mean(1)
    bottom = x[:, -6:].reshape(len(x), -1, 3).mean(1)
    return float(np.mean(top[:, 2] - top[:, :2].mean(1) > bottom[:, 2] - bottom[:, :2].mean(1)))


def test_close_ups_have_no_horizon(group):
    """close_up 1: every image a close-up on a plain backdrop, so the sky-above cue is gone (only the object
    says which way is up) and the border is one colour, not sky and ground; a bad value names its key."""
    scenes = synth_cifar.generate(200, 10, 0, _with(group, close_up=0.0, colour_jitter=0.5))[0]
    close = synth_cifar.generate(200, 10, 0, _with(group, close_up=1.0, colour_jitter=0.5))[0]
    assert _sky_above_fraction(scenes) > 0.7
    assert 0.25 < _sky_above_fraction(close) < 0.75  # a coin flip: no sky, no ground

    def border_spread(x):  # per image: how far apart the top and bottom rows' mean colours are
        return np.abs(x[:, 0].astype(float).mean(1) - x[:, -1].astype(float).mean(1)).sum(-1).mean()
    assert border_spread(close) < 0.5 * border_spread(scenes)
    with pytest.raises(UserError, match="data.cifar10.close_up"):
        synth_cifar.generate(10, 10, 0, _with(group, close_up=1.5))


def test_without_close_ups_the_scenes_are_unchanged_by_the_option(group):
    """close_up 0 draws no extra random numbers: the zoom setting cannot change a single pixel."""
    a = synth_cifar.generate(30, 10, 0, _with(group, close_up=0.0, close_up_zoom=1.0))
    b = synth_cifar.generate(30, 10, 0, _with(group, close_up=0.0, close_up_zoom=2.5))
    assert all(np.array_equal(u, v) for u, v in zip(a[:4], b[:4]))
