"""Score generated digits with a trained classifier: how often is the intended label recognised?"""

from __future__ import annotations

import torch


@torch.no_grad()
def predict_labels(classifier: torch.nn.Module, images01: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Arg-max class of each image (pixels in [0, 1], (N, 784) or (N, 28, 28))."""
    classifier.eval()
    out = [classifier(images01[i:i + batch_size]).argmax(dim=1) for i in range(0, len(images01), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=images01.device)


def label_agreement(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int = 10) -> dict:
    """Overall fraction of predictions equal to the intended label, and a per-class table: how many
    images, the fraction recognised, and the most frequent other prediction."""
    predicted, labels = predicted.cpu().long(), labels.cpu().long()
    if predicted.shape != labels.shape:
        raise ValueError(f"{predicted.shape} predictions for {labels.shape} labels")
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    rows = []
    for c in range(n_classes):
        n = int(confusion[c].sum())
        others = confusion[c].clone()
        others[c] = -1
        top = int(others.argmax())
        rows.append({"label": c, "n": n,
                     "fraction": float(confusion[c, c]) / n if n else float("nan"),
                     "top_other": top if n and others[top] > 0 else None,
                     "top_other_fraction": float(others[top]) / n if n and others[top] > 0 else 0.0})
    total = len(labels)
    return {"fraction": float(confusion.diag().sum()) / total if total else float("nan"),
            "per_class": rows, "confusion": confusion.tolist()}
