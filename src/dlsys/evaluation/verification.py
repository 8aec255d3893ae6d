"""Verification metrics from scores: ROC curve, ROC AUC, equal error rate, accuracy at a threshold."""

from __future__ import annotations

import numpy as np


def _as_arrays(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.shape} vs {y.shape}")
    if y.all() or not y.any():
        raise ValueError("need both positive and negative pairs")
    return s, y


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): accept when score >= threshold; starts at (0, 0) with threshold +inf."""
    s, y = _as_arrays(scores, labels)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def roc_auc(scores, labels) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann–Whitney)."""
    s, y = _as_arrays(scores, labels)
    from scipy.stats import rankdata

    ranks = rankdata(s)
    n_pos, n_neg = y.sum(), (~y).sum()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def equal_error_rate(scores, labels) -> float:
    """The rate where false acceptance equals false rejection, interpolated along the ROC curve."""
    fpr, tpr, _ = roc_curve(scores, labels)
    fnr = 1.0 - tpr
    diff = fnr - fpr                       # decreasing from 1 to -1 along the curve
    k = int(np.flatnonzero(diff <= 0)[0])
    if diff[k] == 0 or k == 0:
        return float(fpr[k])
    # Linear interpolation on the segment from point k-1 (diff > 0) to point k (diff <= 0).
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def accuracy_at(probabilities, labels, threshold: float = 0.5) -> float:
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    return float(np.mean((p >= threshold) == y))


def best_threshold(scores, labels) -> tuple[float, float]:
    """(threshold, accuracy): the accept-if-score >= threshold cut with the highest accuracy on these scores.

    Cuts lie midway between neighbouring distinct scores (and below / above all of them); among equally
    accurate cuts the middle one is taken, so the threshold does not sit on one pair's score.
    """
    s, y = _as_arrays(scores, labels)
    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each run of equal scores
    # Cutting after run k rejects everything up to it: correct = negatives rejected + positives accepted.
    neg_rejected = np.r_[0, np.cumsum(~y)[distinct]]
    pos_accepted = y.sum() - np.r_[0, np.cumsum(y)[distinct]]
    acc = (neg_rejected + pos_accepted) / len(s)
    u = s[distinct]
    cuts = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2, u[-1] + 1.0]
    best = np.flatnonzero(acc == acc.max())
    k = int(best[len(best) // 2])
    return float(cuts[k]), float(acc[k])
