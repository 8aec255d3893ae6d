import csv
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dlsys.plots import history
from dlsys.plots.history import join_on_epoch, panel_of, plot_history


def test_columns_are_grouped_into_loss_accuracy_and_score_panels():
    assert panel_of("train_loss") == "loss" and panel_of("test_bce") == "loss"
    assert panel_of("val_acc") == "accuracy (%)" and panel_of("class_consistency") == "accuracy (%)"
    assert panel_of("val_snr_db") == "score"


def test_a_diverged_run_is_drawn_and_its_csv_keeps_the_gap(tmp_path, monkeypatch):
    drawn = {}
    real_new_figure = history.new_figure

    def spy(ncols=1, *a, **k):
        fig, axes = real_new_figure(ncols, *a, **k)
        drawn["axes"] = axes
        return fig, axes

    monkeypatch.setattr(history, "new_figure", spy)
    rows = [{"epoch": 1, "train_loss": 2.0, "val_acc": 0.5},
            {"epoch": 2, "train_loss": 1.0, "val_acc": 0.7},
            {"epoch": 3, "train_loss": 1e30},
            {"epoch": 4, "train_loss": float("nan")}]
    png = plot_history(rows, tmp_path, "toy", "synthetic", diverged_at=4)
    assert png.exists() and png.stat().st_size > 1000
    axes = drawn["axes"][0]
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy (%)"]
    assert axes[0].get_ylim()[1] < 1e3  # the exploding loss does not flatten the curve
    assert max(max(line.get_ydata()) for line in axes[1].get_lines()) == pytest.approx(70.0)
    with open(tmp_path / "curves.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["val_acc"] for r in table] == ["0.5", "0.7", "", ""]
    assert table[3]["train_loss"] == ""
    plt.close("all")


def test_timings_never_enter_a_curve(tmp_path):
    rows = [{"epoch": 1, "train_loss": 1.0, "epoch_seconds": 3.2}]
    plot_history(rows, tmp_path, "toy", "synthetic")
    assert "epoch_seconds" not in (tmp_path / "curves.csv").read_text()
    assert math.isfinite(rows[0]["train_loss"])


def test_a_short_exploding_curve_goes_off_scale_and_the_others_stay_readable(tmp_path, monkeypatch):
    """Five loss curves on one axis, one blowing up to 1e32 within four points at its own x values:
    the axis stays at the scale of the others, the explosion is drawn as triangles, and curves that are
    not measured at the exploding curve's x values still join up."""
    drawn = {}
    real_new_figure = history.new_figure

    def spy(ncols=1, *a, **k):
        fig, axes = real_new_figure(ncols, *a, **k)
        drawn["axes"] = axes
        return fig, axes

    monkeypatch.setattr(history, "new_figure", spy)
    steady = {"a": [2.3, 2.2, 2.1, 2.0], "b": [2.4, 2.3, 2.3, 2.2], "c": [2.3, 1.9, 1.5, 1.2]}
    rows = [{"it": it, **{k: v[i] for k, v in steady.items()}} for i, it in enumerate((2, 4, 8, 10))]
    rows[0]["boom"], rows[1]["boom"] = 2.3, 11.3
    rows.insert(2, {"it": 5, "boom": 1.8e13})
    rows.insert(3, {"it": 6, "boom": 7e32})
    rows.insert(4, {"it": 7, "boom": float("nan")})
    plot_history(rows, tmp_path, "toy", "synthetic", x="it", panels={"loss": ["a", "b", "c", "boom"]},
                 labels={"boom": "boom: diverges"})
    ax = drawn["axes"][0][0]
    assert ax.get_ylim()[1] < 50
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert "boom: diverges off scale (max 7e+32)" in lines
    for k in steady:  # four measured points each, joined (no gap at it 5 and 6)
        assert list(lines[k].get_xdata()) == [2, 4, 8, 10]
    plt.close("all")


def test_off_scale_rules():
    from dlsys.plots.history import off_scale

    nan = float("nan")
    # a loss that explodes after two points, and one already exploded at its first point (ceiling only)
    assert off_scale(np.array([2.3, 11.3, 1.8e13, 7e32, nan])).tolist() == [False, False, True, True, False]
    assert off_scale(np.array([1e19, nan]), ceiling=10.0).tolist() == [True, False]
    # gradual growth (a KL term warming up) is a curve, not an explosion
    assert not off_scale(np.array([0.5, 5.0, 12.0, 30.0])).any()
    # scores cross zero: a jump from -0.2 dB to 8 dB is not an explosion when the axis is not a loss
    assert not off_scale(np.array([-0.2, 8.0]), explosive=False).any()
    assert off_scale(np.array([-0.2, 8.0])).tolist() == [False, True]


def test_join_on_epoch_aligns_curves_and_names_their_columns():
    curves = {"a": [{"epoch": 1.0, "x": 1}, {"epoch": 2.0, "x": 2}], "b": [{"epoch": 2.0, "x": 5}]}
    assert join_on_epoch(curves, ("x",)) == [{"epoch": 1, "a x": 1}, {"epoch": 2, "a x": 2, "b x": 5}]
    named = join_on_epoch(curves, ("x", "y"), column_name=lambda label, col: f"{col}_{label}")
    assert named == [{"epoch": 1, "x_a": 1, "y_a": None}, {"epoch": 2, "x_a": 2, "y_a": None, "x_b": 5, "y_b": None}]
