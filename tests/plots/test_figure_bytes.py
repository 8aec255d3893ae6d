"""save_figure: the same figure gives the same bytes, whatever the date or the matplotlib version.

Otherwise every re-run changes every plot's md5 and DVC cannot tell a changed figure from a re-drawn one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib
import pytest

from dlsys.plots import new_figure, save_figure


def _figure():
    fig, axes = new_figure()
    ax = axes[0][0]
    ax.plot([1, 2, 3, 4], [0.9, 0.5, 0.3, 0.25], label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("a figure")
    ax.legend()
    return fig


def _save(path: Path, monkeypatch, epoch: str, version: str) -> str:
    # the two things a figure's file picks up from outside the figure: the clock and the library version
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    monkeypatch.setattr(matplotlib, "__version__", version)
    save_figure(_figure(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_same_figure_same_bytes(tmp_path: Path, monkeypatch, suffix: str):
    a = _save(tmp_path / f"a{suffix}", monkeypatch, "0", "3.0.0")
    b = _save(tmp_path / f"b{suffix}", monkeypatch, "1700000000", "9.9.9")
    assert a == b
    data = (tmp_path / f"a{suffix}").read_bytes()
    assert b"3.0.0" not in data and b"Matplotlib" not in data.replace(b"matplotlib.org", b"")


def test_different_figures_still_differ(tmp_path: Path, monkeypatch):
    a = _save(tmp_path / "a.png", monkeypatch, "0", "3.0.0")
    fig, axes = new_figure()
    axes[0][0].plot([1, 2], [2, 1])
    save_figure(fig, tmp_path / "b.png")
    assert hashlib.sha256((tmp_path / "b.png").read_bytes()).hexdigest() != a
