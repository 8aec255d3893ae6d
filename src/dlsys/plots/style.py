"""Shared figure helpers. Every title carries the data source so a plot can't be mistaken for real data."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dlsys.core.outputs import atomic_path  # noqa: E402

DPI = 110
plt.rcParams.update({
    "figure.dpi": DPI,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "svg.hashsalt": "dlsys",  # SVG element ids from a fixed salt, not a random uuid per save
})

# What savefig would stamp into a file that changes with the date or the matplotlib version, not with the
# figure: dropped, so the same figure gives the same bytes and DVC sees an unchanged output as unchanged.
NO_VOLATILE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] | None = None, **kw):
    size = size or (5.0 * ncols, 3.6 * nrows)
    return plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)


def titled(text: str, source: str) -> str:
    return f"{text} [{source} data]"


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        fmt = path.suffix.lstrip(".").lower() or "png"
        fig.savefig(tmp, format=fmt, bbox_inches="tight", metadata=NO_VOLATILE_METADATA.get(fmt))
    plt.close(fig)
    return path


def image_grid(images: Sequence[np.ndarray | None], nrows: int, ncols: int, title: str,
               row_labels: Sequence[str] | None = None, cell: float = 0.7, cmap: str = "gray"):
    """A grid of images (H×W or H×W×3); `None` leaves a cell empty. Returns the figure."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols + 0.8, cell * nrows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for s in ax.spines.values():
            s.set_visible(False)
        img = images[i] if i < len(images) else None
        if img is not None:
            ax.imshow(img, cmap=None if np.ndim(img) == 3 else cmap, interpolation="nearest")
        if row_labels is not None and i % ncols == 0:
            ax.set_ylabel(row_labels[i // ncols], rotation=0, ha="right", va="center")
    fig.suptitle(title)
    return fig
