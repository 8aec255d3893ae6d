import numpy as np
import pytest

from dlsys.evaluation.verification import accuracy_at, best_threshold, equal_error_rate, roc_auc, roc_curve

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


def test_best_threshold_separates_separable_scores_midway():
    assert best_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == (pytest.approx(0.5), 1.0)
    # inverted scores: the best cut accepts everything or nothing (half right), never a wrong split
    th, acc = best_threshold([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])
    assert acc == 0.5 and accuracy_at([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], th) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_matches_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 1.0, 1.0), 1)  # rounded: many tied scores
    th, acc = best_threshold(s, y)
    cuts = np.r_[s.min() - 1, np.unique(s), s.max() + 1]
    assert acc == pytest.approx(max(accuracy_at(s, y, c) for c in cuts))
    assert accuracy_at(s, y, th) == pytest.approx(acc)
    assert th not in set(s.tolist())  # the cut lies between scores, not on one


def test_best_threshold_takes_the_middle_of_equally_good_cuts():
    # the cuts at 0.25, 0.55 and 0.8 each get 4 of 6 right: the middle one is taken
    th, acc = best_threshold([0.1, 0.4, 0.5, 0.6, 0.7, 0.9], [0, 1, 0, 1, 0, 1])
    assert acc == pytest.approx(4 / 6) and th == pytest.approx(0.55)
