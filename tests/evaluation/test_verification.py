import numpy as np
import pytest

from dlsys.evaluation.verification import accuracy_at, equal_error_rate, roc_auc, roc_curve

POS = [0.9, 0.8, 0.7, 0.3]
NEG = [0.6, 0.2, 0.1, 0.05]
SCORES = POS + NEG
LABELS = [1] * 4 + [0] * 4


def test_eer_on_hand_made_scores():
    # At threshold 0.6: one positive rejected (FRR 1/4), one negative accepted (FAR 1/4).
    assert equal_error_rate(SCORES, LABELS) == pytest.approx(0.25)


def test_eer_interpolates_between_roc_points():
    # pos [3, 1], neg [2, 0]: FRR/FAR cross between (FAR 0, FRR .5) and (FAR .5, FRR .5) → 0.5;
    # a perfectly separated set has EER 0 and a perfectly inverted one EER 1.
    assert equal_error_rate([3, 1, 2, 0], [1, 1, 0, 0]) == pytest.approx(0.5)
    assert equal_error_rate([3, 2, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.0)
    assert equal_error_rate([0, 1, 2, 3], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_auc_counts_ordered_pairs():
    # 15 of 16 positive/negative pairs are ordered correctly.
    assert roc_auc(SCORES, LABELS) == pytest.approx(15 / 16)
    assert roc_auc([1, 1], [1, 0]) == pytest.approx(0.5)  # a tie counts half


def test_roc_curve_endpoints_and_monotone():
    fpr, tpr, thr = roc_curve(SCORES, LABELS)
    assert (fpr[0], tpr[0]) == (0, 0) and (fpr[-1], tpr[-1]) == (1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(SCORES, LABELS))


def test_accuracy_at_threshold():
    assert accuracy_at([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0], 0.5) == pytest.approx(0.5)


def test_one_class_only_is_an_error():
    with pytest.raises(ValueError):
        equal_error_rate([0.1, 0.2], [1, 1])
