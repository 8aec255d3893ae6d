"""Inspecting representations: top-scoring examples per unit/class, 2-D embeddings, and separability.

Separability is measured in the 2-D embedding (what the scatter plot shows) with two numbers:
leave-one-out k-NN accuracy and the silhouette score of the class labels.
"""

from __future__ import annotations

import numpy as np


def top_k_per_column(scores: np.ndarray, k: int) -> list[list[int]]:
    """For each column j: the row indices of the k largest scores[:, j], largest first."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=0, kind="stable")[:k]
    return [order[:, j].tolist() for j in range(scores.shape[1])]


def assigned_top_k(scores: np.ndarray, k: int) -> list[list[int]]:
    """Assign each row to the column with its largest score; per column, its ≤ k best assigned rows.

    A column that wins fewer than k rows gets a shorter list (its grid row has empty cells).
    """
    scores = np.asarray(scores)
    winner = np.argmax(scores, axis=1)
    out = []
    for j in range(scores.shape[1]):
        rows = np.flatnonzero(winner == j)
        best = rows[np.argsort(-scores[rows, j], kind="stable")][:k]
        out.append(best.tolist())
    return out


def pca_2d(x: np.ndarray, dims: int = 2, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float64)
    dims = min(dims, x.shape[0], x.shape[1])
    return PCA(n_components=dims, random_state=seed).fit_transform(x)


def tsne_2d(x: np.ndarray, perplexity: float, pca_dims: int, seed: int = 0) -> np.ndarray:
    """t-SNE of x, after a PCA to `pca_dims` (the standard speed-up; 0 disables it)."""
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float64)
    if pca_dims and x.shape[1] > pca_dims:
        x = pca_2d(x, pca_dims, seed)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(x)


def knn_accuracy(emb: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Leave-one-out k-nearest-neighbour accuracy (majority vote, ties to the nearest neighbour's class)."""
    from sklearn.neighbors import NearestNeighbors

    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(emb)
    idx = nn.kneighbors(emb, return_distance=False)
    # Drop each point itself (it is its own nearest neighbour, unless duplicated; then drop one copy).
    self_col = idx == np.arange(len(emb))[:, None]
    has_self = self_col.any(axis=1)
    keep = np.where(has_self[:, None], ~self_col, np.arange(k + 1)[None, :] < k)
    neigh = idx[keep].reshape(len(emb), k)
    votes = labels[neigh]
    n_cls = int(labels.max()) + 1
    counts = np.zeros((len(emb), n_cls))
    np.add.at(counts, (np.arange(len(emb))[:, None], votes), 1.0)
    counts[np.arange(len(emb)), votes[:, 0]] += 0.5  # tie-break: the nearest neighbour's class
    return float(np.mean(np.argmax(counts, axis=1) == labels))


def silhouette(emb: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(np.asarray(emb, dtype=np.float64), np.asarray(labels)))
