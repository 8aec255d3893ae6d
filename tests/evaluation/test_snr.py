import math

import numpy as np
import torch

from dlsys.evaluation.snr import EPS, snr_db, snr_db_many


def test_hand_computed_values():
    # Σs² = 25, Σ(s-ŝ)² = 1 → 10·log10(25) dB
    assert math.isclose(snr_db([3.0, 4.0], [3.0, 3.0]), 10 * math.log10(25.0), rel_tol=1e-9)
    # error as large as the signal → 0 dB
    assert math.isclose(snr_db([1.0, 0.0], [0.0, 0.0]), 0.0, abs_tol=1e-9)
    # Σs² = 2, Σ(s-ŝ)² = 0.02 → 20 dB
    assert math.isclose(snr_db(np.array([1.0, -1.0]), np.array([0.9, -1.1])), 20.0, rel_tol=1e-9)


def test_silent_reference_is_finite():
    v = snr_db(np.zeros(4), np.ones(4))
    assert math.isfinite(v)
    assert math.isclose(v, 10 * math.log10(EPS / 4.0), rel_tol=1e-9)
    assert snr_db(np.zeros(4), np.zeros(4)) == 0.0  # both guards: 10·log10(eps/eps)


def test_identical_signals_are_finite_and_large():
    s = np.array([0.5, -0.25, 1.0])
    v = snr_db(s, s)
    assert math.isfinite(v)
    assert math.isclose(v, 10 * math.log10((np.sum(s**2) + EPS) / EPS), rel_tol=1e-9)


def test_torch_inputs_and_length_mismatch():
    assert math.isclose(snr_db(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.0])), 10 * math.log10(25.0),
                        rel_tol=1e-6)
    try:
        snr_db([1.0, 2.0], [1.0])
    except ValueError as exc:
        assert "differ" in str(exc)
    else:
        raise AssertionError("length mismatch accepted")


def test_batched_snr_equals_per_row_with_lengths():
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(3, 50, generator=gen)
    est = ref + 0.1 * torch.randn(3, 50, generator=gen)
    lengths = [50, 20, 7]
    got = snr_db_many(ref, est, lengths)
    for i, n in enumerate(lengths):
        assert math.isclose(float(got[i]), snr_db(ref[i, :n], est[i, :n]), rel_tol=1e-9)
