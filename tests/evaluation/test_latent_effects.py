import numpy as np
import pytest
from scipy.stats import spearmanr

from dlsys.evaluation.latent_effects import (axis_tilt, latent_effect, latent_plane_effect, principal_axis_angle,
                                             spearman_rho)


def test_spearman_matches_scipy_and_is_rank_based():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    b = b + a
    assert spearman_rho(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman_rho(a, np.exp(a)) == pytest.approx(1.0)
    assert spearman_rho(a, -a**3) == pytest.approx(-1.0)
    assert np.isnan(spearman_rho(a, np.ones_like(a)))


def _bar(angle_deg, size=28, length=20, width=2.0):
    """A thick line through the centre at angle_deg counter-clockwise from horizontal (y up)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    x, y = xx - (size - 1) / 2, -(yy - (size - 1) / 2)
    t = np.radians(angle_deg)
    along = x * np.cos(t) + y * np.sin(t)
    across = -x * np.sin(t) + y * np.cos(t)
    return ((np.abs(along) <= length / 2) & (np.abs(across) <= width)).astype(np.float32)


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0, -45.0, 80.0])
def test_principal_axis_angle_of_a_bar(angle):
    est = principal_axis_angle(_bar(angle)[None])[0]
    assert est == pytest.approx(angle, abs=3.0)


def test_axis_tilt_is_zero_for_upright_and_tracks_rotation():
    angles = np.array([-60.0, -20.0, 0.0, 25.0, 70.0])
    tilts = axis_tilt(np.stack([_bar(90.0 + a) for a in angles]))
    np.testing.assert_allclose(tilts, angles, atol=3.0)
    with pytest.raises(ValueError, match="no ink"):
        principal_axis_angle(np.zeros((1, 28, 28)))


def test_latent_effect_finds_the_rotation_dimension():
    rng = np.random.default_rng(1)
    angle = rng.uniform(-90, 90, 500)
    mu = rng.normal(size=(500, 4))
    mu[:, 2] = -np.tanh(angle / 60) + 0.05 * rng.normal(size=500)
    eff = latent_effect(mu, angle)
    assert eff["best_dim"] == 2 and eff["rho"] < -0.95 and len(eff["rho_per_dim"]) == 4
    assert max(abs(r) for k, r in enumerate(eff["rho_per_dim"]) if k != 2) < 0.2


def test_plane_effect_finds_a_circle_no_single_dim_does():
    rng = np.random.default_rng(2)
    angle = rng.uniform(-90, 90, 800)
    mu = rng.normal(size=(800, 4)) * 0.1
    phase = np.radians(2 * angle + 40)  # rotation closes on itself: one turn over 180°
    mu[:, 1], mu[:, 3] = np.cos(phase), np.sin(phase)
    assert latent_effect(mu, angle)["abs_rho"] < 0.8
    plane = latent_plane_effect(mu, angle)
    assert plane["dims"] == [1, 3] and plane["abs_rho"] > 0.95
