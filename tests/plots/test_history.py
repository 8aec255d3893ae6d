import csv
import math

import matplotlib.pyplot as plt
import pytest

from dlsys.plots import history
from dlsys.plots.history import panel_of, plot_history


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
