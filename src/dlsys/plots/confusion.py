"""The confusion-matrix figure (numbers come from dlsys.evaluation.classification)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from dlsys.plots.style import new_figure, save_figure


def plot_confusion(cm: np.ndarray, names: Sequence[str], title: str, path: str | Path) -> Path:
    """Row-normalised confusion matrix with counts, saved as a PNG."""
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
