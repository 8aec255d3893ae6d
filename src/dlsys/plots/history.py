"""Per-epoch curves, drawn the same way for every stage: one CSV (for `dvc plots`) and one PNG.

Losses, accuracies and other scores get separate axes (they live on different scales); a diverged run's
missing or non-finite values are left as gaps, the divergence is marked, and a loss that explodes does
not flatten the rest of the curve (the axis stops at a robust limit and off-scale points are drawn as
triangles on the top edge).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dlsys.core.outputs import write_table_csv
from dlsys.plots.style import new_figure, save_figure, titled

# Which panel a column goes to, by the words in its name; the first match wins.
PANEL_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss", "bce", "kl", "mse", "penalty")),
    ("accuracy (%)", ("acc", "consistency")),
)
OTHER_PANEL = "score"
# An exploding loss: stop the axis at this multiple of the robust (median) scale of the curve.
OFF_SCALE_FACTOR = 20.0


def panel_of(column: str) -> str:
    name = column.lower()
    for panel, words in PANEL_RULES:
        if any(w in name for w in words):
            return panel
    return OTHER_PANEL


def _value(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def history_columns(rows: Sequence[Mapping[str, Any]], x: str) -> list[str]:
    """Numeric result columns in first-seen order; timings are never part of a curve."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k != x and k not in cols and "seconds" not in k and k != "diverged"]
    return cols


def plot_history(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, title: str, source: str, *,
                 name: str = "curves", x: str = "epoch", panels: Mapping[str, Sequence[str]] | None = None,
                 diverged_at: int | None = None, xlabel: str | None = None) -> Path:
    """Write `<out_dir>/<name>.csv` and `<name>.png`; returns the PNG path.

    `panels` maps an axis label to the columns drawn on it; by default columns are grouped by name into
    loss / accuracy / score panels. Accuracy columns are fractions and are drawn in percent.
    """
    out_dir = Path(out_dir)
    cols = history_columns(rows, x)
    write_table_csv(out_dir / f"{name}.csv", [{x: r.get(x), **{c: r.get(c) for c in cols}} for r in rows])
    if panels is None:
        grouped: dict[str, list[str]] = {}
        for c in cols:
            grouped.setdefault(panel_of(c), []).append(c)
        panels = grouped
    panels = {label: list(cs) for label, cs in panels.items() if cs}
    fig, axes = new_figure(max(len(panels), 1))
    xs = np.array([_value(r.get(x)) for r in rows])
    for ax, (label, columns) in zip(axes[0], panels.items()):
        percent = "%" in label
        for c in columns:
            ys = np.array([_value(r.get(c)) for r in rows]) * (100.0 if percent else 1.0)
            _draw(ax, xs, ys, c)
        ax.set(xlabel=xlabel or x, ylabel=label, title=label.split(" (")[0])
        if len(columns) > 1 or columns[0] != label:
            ax.legend(fontsize=8)
        if diverged_at is not None:
            ax.axvline(diverged_at, color="tab:red", linestyle="--", linewidth=1)
            ax.text(diverged_at, ax.get_ylim()[1], " diverged", color="tab:red", va="top", fontsize=8)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no finite values recorded", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
    fig.suptitle(titled(title, source))
    return save_figure(fig, out_dir / f"{name}.png")


def _draw(ax, xs: np.ndarray, ys: np.ndarray, label: str) -> None:
    finite = np.isfinite(ys)
    marker = "o-" if len(xs) <= 30 else "-"
    if not finite.any():
        ax.plot([], [], marker, label=f"{label} (no finite values)")
        return
    scale = float(np.median(np.abs(ys[finite]))) or 1.0
    limit = OFF_SCALE_FACTOR * scale
    off = finite & (np.abs(ys) > limit)
    shown = np.where(finite & ~off, ys, np.nan)
    line = ax.plot(xs, shown, marker, markersize=3, label=label)[0]
    if off.any():
        lo, hi = ax.get_ylim()
        edge = min(hi, limit)
        ax.set_ylim(lo, edge)
        ax.plot(xs[off], np.full(off.sum(), edge), "^", color=line.get_color(), clip_on=False,
                label=f"{label} off scale (max {np.nanmax(ys[off]):.3g})")

