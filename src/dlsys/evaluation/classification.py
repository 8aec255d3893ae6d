"""Classification numbers: the one accuracy function, predictions, confusion matrix, per-class accuracy and
DVC `confusion` rows. (The confusion figure is drawn by dlsys.plots.confusion.)"""

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


def accuracy(predicted: torch.Tensor, actual: torch.Tensor) -> float:
    """Fraction of correct predictions; `predicted` holds labels, or logits/scores (N, C) to argmax."""
    if predicted.ndim == 2:
        predicted = predicted.argmax(1)
    if predicted.shape != actual.shape:
        raise ValueError(f"predictions {tuple(predicted.shape)} and labels {tuple(actual.shape)} differ in shape")
    if len(actual) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((predicted == actual.to(predicted.device)).sum()) / len(actual)


@torch.no_grad()
def model_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Accuracy of a classifier on (x, y), evaluated in batches in eval mode."""
    return accuracy(predict(model, x, batch_size), y)


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
