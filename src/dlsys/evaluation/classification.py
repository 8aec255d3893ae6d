"""Classification summaries: confusion matrix, per-class accuracy, DVC `confusion` rows and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Class predictions (argmax of logits) in batches; the model is put in eval mode."""
    model.eval()
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def confusion_matrix(actual, predicted, n_classes: int) -> np.ndarray:
    """counts[i, j] = number of samples of class i predicted as j."""
    a = np.asarray(actual, dtype=np.int64).ravel()
    p = np.asarray(predicted, dtype=np.int64).ravel()
    return np.bincount(a * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(cm: np.ndarray, names: Sequence[str]) -> dict[str, float | None]:
    """Recall of each class (None for a class absent from the data)."""
    totals = cm.sum(1)
    return {n: (float(cm[i, i] / totals[i]) if totals[i] else None) for i, n in enumerate(names)}


def confusion_rows(actual, predicted, names: Sequence[str]) -> list[dict]:
    """One row per sample, as DVC's `confusion` template expects (x: actual, y: predicted)."""
    a = np.asarray(actual).ravel()
    p = np.asarray(predicted).ravel()
    return [{"actual": names[i], "predicted": names[j]} for i, j in zip(a.tolist(), p.tolist())]


def plot_confusion(cm: np.ndarray, names: Sequence[str], title: str, path: str | Path) -> Path:
    """Row-normalised confusion matrix with counts, saved as a PNG."""
    from dlsys.plots import new_figure, save_figure

    k = len(names)
    fig, axes = new_figure(size=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax = axes[0, 0]
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return save_figure(fig, path)
