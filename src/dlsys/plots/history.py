"""Per-epoch curves, drawn the same way for every stage: one CSV (for `dvc plots`) and one PNG.

Losses, accuracies and other scores get separate axes (they live on different scales); a diverged run's
non-finite values are left as gaps, the divergence is marked, and a loss that explodes does not flatten
the other curves (on a loss axis, a point far above everything its curve reached before is drawn as a
triangle on the top edge; `ceilings` sets an explicit limit for an axis).
A missing value (None, or a row without the column) means "not measured here": the line joins the
measured points around it, so curves evaluated every N epochs, or at their own x values, stay lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dlsys.core.outputs import write_table_csv
from dlsys.plots.style import new_figure, save_figure, titled

# Which panel a column goes to, by the words in its name; the first match wins.
PANEL_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss", "bce", "kl", "mse", "penalty")),
    ("accuracy (%)", ("acc", "consistency")),
)
OTHER_PANEL = "score"
# An exploding loss: a point above this multiple of the largest value its curve reached before (the
# points drawn so far) is drawn off scale. Losses only: accuracies are bounded and scores (dB) cross zero.
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


def join_on_epoch(curves: Mapping[str, Sequence[Mapping[str, Any]]], columns: Sequence[str],
                  column_name: Callable[[str, str], str] = "{} {}".format, x: str = "epoch") -> list[dict]:
    """Several labelled curves side by side: one row per epoch holding each curve's `columns`, named
    `column_name(label, column)` (by default "<label> <column>")."""
    by_epoch: dict[int, dict] = {}
    for label, rows in curves.items():
        for r in rows:
            e = int(r[x])
            row = by_epoch.setdefault(e, {x: e})
            row.update({column_name(label, c): r.get(c) for c in columns})
    return [by_epoch[e] for e in sorted(by_epoch)]


def history_columns(rows: Sequence[Mapping[str, Any]], x: str) -> list[str]:
    """Numeric result columns in first-seen order; timings are never part of a curve."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k != x and k not in cols and "seconds" not in k and k != "diverged"]
    return cols


def plot_history(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, title: str, source: str, *,
                 name: str = "curves", x: str = "epoch", panels: Mapping[str, Sequence[str]] | None = None,
                 diverged_at: int | None = None, xlabel: str | None = None,
                 labels: Mapping[str, str] | None = None, ceilings: Mapping[str, float] | None = None) -> Path:
    """Write `<out_dir>/<name>.csv` and `<name>.png`; returns the PNG path.

    `panels` maps an axis label to the columns drawn on it; by default columns are grouped by name into
    loss / accuracy / score panels. Accuracy columns are fractions and are drawn in percent. `labels`
    gives a column a longer legend text (the CSV keeps the column name). `ceilings` maps a panel label to
    the value above which its points are drawn off scale (a curve whose first points already exploded
    has nothing of its own to compare with).
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
        series = []
        for c in columns:
            measured = np.array([r.get(c) is not None for r in rows], dtype=bool)
            ys = np.array([_value(r.get(c)) for r in rows]) * (100.0 if percent else 1.0)
            series.append(((labels or {}).get(c, c), xs[measured], ys[measured]))
        _draw_panel(ax, series, explosive="loss" in label.lower(), ceiling=(ceilings or {}).get(label))
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


def off_scale(ys: np.ndarray, explosive: bool = True, ceiling: float | None = None) -> np.ndarray:
    """Finite points of one curve to draw off scale: above `ceiling`, or (when `explosive`) above
    OFF_SCALE_FACTOR × the largest |value| drawn before them. Judged per curve, so a curve that blows up
    within a few points is caught and a curve that lives at a larger scale is not."""
    off = np.zeros(len(ys), dtype=bool)
    top = None
    for i, y in enumerate(ys):
        if not math.isfinite(y):
            continue
        if (ceiling is not None and y > ceiling) or (
                explosive and top is not None and abs(y) > OFF_SCALE_FACTOR * (top or 1.0)):
            off[i] = True
        else:
            top = abs(y) if top is None else max(top, abs(y))
    return off


def _draw_panel(ax, series: Sequence[tuple[str, np.ndarray, np.ndarray]], explosive: bool,
                ceiling: float | None) -> None:
    """Draw every curve of one axis; off-scale points become triangles on the top edge of the axis that
    the other points set."""
    offs = []
    for label, xs, ys in series:
        finite = np.isfinite(ys)
        marker = "o-" if len(xs) <= 30 else "-"
        if not finite.any():
            ax.plot([], [], marker, label=f"{label} (no finite values)")
            continue
        off = off_scale(ys, explosive, ceiling)
        line = ax.plot(xs, np.where(finite & ~off, ys, np.nan), marker, markersize=3, label=label)[0]
        if off.any():
            offs.append((label, xs[off], ys[off], line.get_color()))
    if offs:
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi)  # fixed before the triangles go on its top edge
        for label, xo, yo, color in offs:
            ax.plot(xo, np.full(len(xo), hi), "^", color=color, clip_on=False,
                    label=f"{label} off scale (max {np.max(yo):.3g})")

