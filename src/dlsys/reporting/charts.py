"""Tabular plot data → matplotlib figures, shared by the comparison and the results page.

Rows are dicts of strings (what DVC inlines into its Vega specs and what a CSV reader returns).
A `Chart` says how to draw them: lines/scatter (one series per group), horizontal bars, or confusion
heat maps (one panel per revision).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from dlsys.plots import new_figure, save_figure

KINDS = ("line", "scatter", "bar", "confusion")
DASHES = ["-", "--", ":", "-."]
LOG_SCALE_RATIO = 1e3       # positive y spanning more than this many × is drawn on a log axis
ANNOTATE_MAX_CLASSES = 15   # confusion cells carry their count up to this many classes
MARKERS_MAX_POINTS = 30     # series this short get point markers


@dataclass
class Series:
    label: str
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    color_key: str = ""
    dash_key: str = ""


@dataclass
class Chart:
    kind: str
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    panels: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # confusion: label → pairs
    normalized: bool = False

    def labels(self) -> list[str]:
        """Every revision / series / panel name the figure shows (tests check both revisions appear)."""
        return list(self.panels) if self.kind == "confusion" else [s.label for s in self.series]


def to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _is_number(value) -> bool:
    return value not in ("", None) and not math.isnan(to_float(value))


def _groups(rows: Iterable[Mapping], group_by: Sequence[str]) -> dict[tuple, list[Mapping]]:
    out: dict[tuple, list[Mapping]] = {}
    for r in rows:
        out.setdefault(tuple(str(r.get(g, "")) for g in group_by), []).append(r)
    return out


def xy_chart(title: str, rows: Sequence[Mapping], x: str, y: str, group_by: Sequence[str] = (),
             kind: str = "line", x_label: str | None = None, y_label: str | None = None) -> Chart:
    """One series per distinct value of `group_by`; with a `rev` among several keys, revisions are
    told apart by line style and the other keys by colour."""
    rev_dashed = "rev" in group_by and len(group_by) > 1
    chart = Chart(kind, title, x_label or x, y_label or y)
    for key, members in _groups(rows, group_by).items():
        named = dict(zip(group_by, key))
        label = " · ".join(key) if key else y
        color = " · ".join(v for g, v in named.items() if g != "rev") if rev_dashed else label
        dash = named.get("rev", "") if rev_dashed else ""
        chart.series.append(Series(label, [to_float(r.get(x)) for r in members],
                                   [to_float(r.get(y)) for r in members], color, dash))
    return chart


def bar_chart(title: str, rows: Sequence[Mapping], value: str, category: str,
              group_by: Sequence[str] = ()) -> Chart:
    chart = Chart("bar", title, value, category)
    for key, members in _groups(rows, group_by).items():
        label = " · ".join(key) if key else value
        chart.series.append(Series(label, [str(r.get(category)) for r in members],
                                   [to_float(r.get(value)) for r in members], label))
    return chart


def confusion_chart(title: str, rows: Sequence[Mapping], actual: str, predicted: str,
                    panel_by: str | None = None, normalized: bool = False) -> Chart:
    chart = Chart("confusion", title, predicted, actual, normalized=normalized)
    for r in rows:
        panel = str(r.get(panel_by, "")) if panel_by else ""
        chart.panels.setdefault(panel, []).append((str(r.get(actual)), str(r.get(predicted))))
    return chart


def long_rows(rows: Sequence[Mapping], x: str, ys: Sequence[str], value_key: str = "value",
              field_key: str = "field") -> list[dict]:
    """Wide rows (x, y1, y2, ...) → one row per (x, y_i), the shape DVC uses for several y columns."""
    return [{x: r.get(x), value_key: r.get(y), field_key: y, **({"rev": r["rev"]} if "rev" in r else {})}
            for y in ys for r in rows]


def guess_chart(title: str, rows: Sequence[Mapping], columns: Sequence[str]) -> Chart | None:
    """A chart for a CSV with no declaration: numeric columns → lines over the first column;
    two label columns → confusion; a label column and numbers → bars. None when nothing fits."""
    if not rows or not columns:
        return None
    numeric = [c for c in columns if any(_is_number(r.get(c)) for r in rows)
               and all(_is_number(r.get(c)) or r.get(c) in ("", None) for r in rows)]
    labels = [c for c in columns if c not in numeric]
    if not labels and len(numeric) >= 2:
        x, ys = numeric[0], numeric[1:]
        return xy_chart(title, long_rows(rows, x, ys), x, "value", ["field"], y_label="value")
    if len(labels) == 2 and not numeric:
        return confusion_chart(title, rows, labels[0], labels[1])
    if len(labels) == 1 and len(numeric) == 1:
        return bar_chart(title, rows, numeric[0], labels[0])
    return None


def render(chart: Chart, path: str | Path) -> Path:
    """Draw `chart` into a PNG or SVG (by suffix), atomically."""
    if chart.kind not in KINDS:
        raise ValueError(f"unknown chart kind {chart.kind!r}; one of {KINDS}")
    if chart.kind == "confusion":
        return _render_confusion(chart, path)
    fig, axes = new_figure(size=(6.4, 4.0))
    ax = axes[0][0]
    if chart.kind == "bar":
        _draw_bars(ax, chart)
    else:
        _draw_xy(ax, chart)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    ax.set_title(chart.title)
    if len(chart.series) > 1 or chart.kind == "bar":
        ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def _draw_xy(ax, chart: Chart) -> None:
    colors = {k: f"C{i % 10}" for i, k in enumerate(dict.fromkeys(s.color_key for s in chart.series))}
    dashes = {k: DASHES[i % len(DASHES)] for i, k in enumerate(dict.fromkeys(s.dash_key for s in chart.series))}
    finite = np.array([v for s in chart.series for v in s.y if math.isfinite(v)])
    for s in chart.series:
        order = np.argsort(np.asarray(s.x, dtype=float), kind="stable")
        xs, ys = np.asarray(s.x, dtype=float)[order], np.asarray(s.y, dtype=float)[order]
        marker = "o" if chart.kind == "scatter" or len(xs) <= MARKERS_MAX_POINTS else None
        ax.plot(xs, ys, linestyle="none" if chart.kind == "scatter" else dashes[s.dash_key],
                marker=marker, markersize=3, color=colors[s.color_key], label=s.label)
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > LOG_SCALE_RATIO:
        ax.set_yscale("log")


def _draw_bars(ax, chart: Chart) -> None:
    cats = list(dict.fromkeys(c for s in chart.series for c in s.x))
    n = max(len(chart.series), 1)
    height = 0.8 / n
    for i, s in enumerate(chart.series):
        values = dict(zip(s.x, s.y))
        pos = np.arange(len(cats)) - 0.4 + height * (i + 0.5)
        ax.barh(pos, [values.get(c, math.nan) for c in cats], height=height, label=s.label, color=f"C{i % 10}")
    ax.set_yticks(np.arange(len(cats)), cats)
    ax.invert_yaxis()


def _render_confusion(chart: Chart, path) -> Path:
    names = sorted({v for pairs in chart.panels.values() for pair in pairs for v in pair})
    index = {n: i for i, n in enumerate(names)}
    n_panels = max(len(chart.panels), 1)
    mats = []
    for pairs in chart.panels.values():
        m = np.zeros((len(names), len(names)))
        for a, p in pairs:
            m[index[a], index[p]] += 1
        mats.append(m / np.maximum(m.sum(axis=1, keepdims=True), 1) if chart.normalized else m)
    top = max((m.max() for m in mats), default=0) or 1  # one colour scale for every panel
    fig, axes = new_figure(ncols=n_panels, size=(4.4 * n_panels, 4.0))
    for ax, panel, m in zip(axes[0], chart.panels, mats):
        ax.grid(False)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=top)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel(chart.x_label)
        ax.set_ylabel(chart.y_label)
        ax.set_title(panel or chart.title)
        if len(names) <= ANNOTATE_MAX_CLASSES:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, f"{v:.2f}" if chart.normalized else f"{int(v)}", ha="center", va="center",
                        fontsize=6, color="white" if v > top / 2 else "black")
    if len(chart.panels) > 1 or next(iter(chart.panels), ""):
        fig.suptitle(chart.title + (" (row-normalised)" if chart.normalized else ""))
    return save_figure(fig, path)
