import numpy as np

from dlsys.evaluation.embedding import assigned_top_k, knn_accuracy, silhouette, top_k_per_column


def test_top_k_per_column():
    s = np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.8], [0.7, 0.0]])
    assert top_k_per_column(s, 2) == [[3, 1], [0, 2]]


def test_assigned_top_k_leaves_cells_empty():
    # rows 0..4 all peak in column 0; only row 5 peaks in column 1; column 2 never wins
    s = np.array([[9, 1, 0], [8, 1, 0], [7, 1, 0], [6, 1, 0], [5, 1, 0], [0, 3, 2]], dtype=float)
    rows = assigned_top_k(s, 3)
    assert rows == [[0, 1, 2], [5], []]
    # row 5 has column 2's largest score but belongs to column 1 (its own max)
    assert 5 not in rows[2]


def test_knn_accuracy_and_silhouette_rank_separable_above_mixed():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    sep = rng.normal(size=(120, 2)) * 0.1 + labels[:, None] * 5
    mixed = rng.normal(size=(120, 2))
    assert knn_accuracy(sep, labels, 5) == 1.0
    assert knn_accuracy(mixed, labels, 5) < 0.6
    assert silhouette(sep, labels) > 0.8 > silhouette(mixed, labels)
