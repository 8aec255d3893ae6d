"""`make compare A=.. B=..`: a git + DVC repo with two commits and a changed workspace; the report shows
what moved beyond the tolerance and the plots whose data changed, and nothing else."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from dlsys.reporting.charts import render
from dlsys.reporting.compare import (REPORT_NAME, Sources, chart_from_vega, compare, diff_metrics, is_timing,
                                     moved, run_dvc)
from dlsys.reporting.pipeline import PipelineOrder

from .plot_fixtures import PLOTS_YAML

DVC_YAML = "metrics:\n  - metrics/fam/train.json\nplots:\n" + PLOTS_YAML + """\
  - plots/fam/train/static.csv:
      x: step
      y: value
  - plots/fam/train/static.png
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


def _png(path: Path, shade: float) -> None:
    mpimg.imsave(path, [[shade, 0.0], [0.0, shade]], cmap="gray", vmin=0, vmax=1)


def _write(repo: Path, lr: float, metrics: dict, losses: list[float], pairs: list[str], snr: float, shade: float,
           source: str = "synthetic") -> None:
    (repo / "params.yaml").write_text(f"train:\n  lr: {lr}\n  epochs: 2\n")
    (repo / "metrics/fam").mkdir(parents=True, exist_ok=True)
    (repo / "metrics/fam/train.json").write_text(json.dumps({"data_source": source, **metrics}))
    d = repo / "plots/fam/train"
    d.mkdir(parents=True, exist_ok=True)
    acc = metrics["acc"]
    (d / "curve.csv").write_text("epoch,loss,acc\n" + "".join(f"{i + 1},{v},{acc}\n" for i, v in enumerate(losses)))
    (d / "confusion.csv").write_text("actual,predicted\n" + "".join(f"{p}\n" for p in pairs))
    (d / "snr.csv").write_text(f"model,snr_db\nfc,{snr}\nrnn,7.5\n")
    _png(d / "picture.png", shade)
    # re-written on every commit with the same content: never "changed"
    (d / "static.csv").write_text("step,value\n1,3\n2,4\n")
    _png(d / "static.png", 0.3)


BASE = {"acc": 0.5, "n": 10, "loss": 0.25, "per_class": [0.5, 0.5], "train_seconds": 1.0,
        "fit": {"samples_per_s": 100.0}}
HEAD = {"acc": 0.75, "n": 10, "loss": 0.2500001, "per_class": [0.5, 0.75], "train_seconds": 9.0,
        "fit": {"samples_per_s": 900.0}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """HEAD~1: lr 0.1, acc 0.5. HEAD: lr 0.2, acc 0.75, every plot but the static ones changed, timings
    changed, `loss` moved by 1e-7. Workspace: HEAD with acc 0.8."""
    repo = tmp_path_factory.mktemp("cmp") / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    run_dvc(repo, "init", "-q")
    run_dvc(repo, "config", "core.analytics", "false")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _write(repo, 0.1, BASE, [2.0, 1.0], ["a,a", "a,b", "b,b"], 3.25, 1.0)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _write(repo, 0.2, HEAD, [1.5, 0.25], ["a,a", "a,a", "b,b", "b,a"], 4.5, 0.5, source="real")
    _git(repo, "commit", "-qam", "change")
    _write(repo, 0.2, {**HEAD, "acc": 0.8}, [1.5, 0.25], ["a,a", "a,a", "b,b", "b,a"], 4.5, 0.5, source="real")
    return repo


def _table_row(md: str, key: str) -> list[str]:
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines() if ln.startswith("|")]
    hits = [r for r in rows if any(key in c for c in r)]
    assert hits, f"no table row with {key!r} in:\n{md}"
    return hits[0]


def test_timing_keys_are_recognised():
    for key in ("train_seconds", "seconds", "fit.samples_per_s", "epochs_per_s", "samples_per_second",
                "epoch_time_ratio", "timings.fit", "cpu_seconds", "epoch_seconds_mean"):
        assert is_timing(key), key
    for key in ("utterances_per_speaker", "acc", "test_snr_db", "n_samples", "best_epoch", "per_class.s"):
        assert not is_timing(key), key


def test_tolerance_is_relative_and_absolute():
    assert not moved(0.5, 0.5004, rtol=1e-3, atol=0)       # 0.08 % < 0.1 %
    assert moved(0.5, 0.5006, rtol=1e-3, atol=0)
    assert not moved(0.0, 5e-7, rtol=1e-3, atol=1e-6)      # near zero the absolute part decides
    assert moved(0.0, 2e-6, rtol=1e-3, atol=1e-6)
    assert moved([1.0, 2.0], [1.0, 2.5], rtol=1e-3, atol=0) and moved([1.0], [1.0, 2.0], rtol=0, atol=0)
    assert not moved([1.0, 2.0], [1.0, 2.0001], rtol=1e-3, atol=0)
    assert moved("synthetic", "real", rtol=1, atol=1) and moved(True, False, rtol=1, atol=1)


pytestmark = pytest.mark.slow


def test_two_commits_show_only_real_changes(repo: Path, tmp_path: Path):
    out = tmp_path / "compare"
    proc = subprocess.run([sys.executable, "-m", "dlsys.reporting.compare", "--a", "HEAD~1", "--b", "HEAD",
                           "--out", str(out)], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()  # the summary, then where the details are
    assert printed[0] == "# Compare HEAD~1 → HEAD" and printed[-1] == f"Details: {out / REPORT_NAME}"
    assert len(printed) <= 40 and "## Metrics" not in proc.stdout  # one screen
    md = (out / REPORT_NAME).read_text()
    summary, details = md.split("## Metrics", 1)
    assert summary.startswith("\n".join(printed[:-2]))
    assert summary.startswith("# Compare HEAD~1 → HEAD")
    assert "3 changed beyond tolerance" in summary           # acc, per_class, data_source
    assert "1 moved within it" in summary                    # loss
    assert "2 timing fields ignored" in summary              # train_seconds, fit.samples_per_s
    assert "4 of 6 with changed data" in summary

    metrics = details.split("## Params")[0]
    row = _table_row(metrics, "`acc`")
    assert row[1:5] == ["0.5", "0.75", "+0.25", "+50.00 %"]
    assert "`per_class`" in metrics and "`data_source`" in metrics
    for hidden in ("`loss`", "`n`", "seconds", "samples_per_s"):
        assert hidden not in metrics, hidden

    params = details.split("## Params")[1].split("## Plots")[0]
    row = _table_row(params, "train.lr")
    assert row[2:] == ["0.1", "0.2"]
    assert "train.epochs" not in params

    plots = details.split("## Plots whose data changed")[1]
    assert "static" not in plots                              # same data in both revisions
    for name in ("curve.csv", "confusion.csv", "snr.csv"):
        block = plots.split(f"### plots/fam/train/{name}")[1].split("###")[0]
        png = re.search(r"!\[[^\]]*\]\(([^)]+\.png)\)", block).group(1)
        img = mpimg.imread(out / png)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01, name
        assert "`HEAD~1`" in block and "`HEAD`" in block, block
    block = plots.split("### plots/fam/train/picture.png")[1].split("###")[0]
    cells = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", block)
    assert [rev for rev, _ in cells] == ["HEAD~1", "HEAD"]     # A on the left
    a, b = ((out / path).read_bytes() for _, path in cells)
    assert a != b
    # only the images the report shows are kept
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(Path(p).name for _, p in cells)
    assert not (repo / "dvc_plots").exists()


@pytest.fixture(scope="module")
def head_vs_workspace(repo: Path):
    return compare(repo, "HEAD", "workspace")


def test_workspace_on_either_side(repo: Path, head_vs_workspace):
    cmp = head_vs_workspace
    assert [(c.key, c.old, c.new) for c in cmp.metrics.changes] == [("acc", 0.75, 0.8)]
    assert cmp.params == []
    # the curve carries acc as a column; the picture was re-saved with the same pixels
    assert {p.name: p.status for p in cmp.plots if p.status != "same"} == {"plots/fam/train/curve.csv": "changed"}
    back = compare(repo, "workspace", "HEAD~1")
    acc = next(c for c in back.metrics.changes if c.key == "acc")
    assert (acc.old, acc.new) == (0.8, 0.5)
    assert {c.key: (c.old, c.new) for c in back.params} == {"train.lr": (0.2, 0.1)}


def test_a_looser_tolerance_hides_small_moves(head_vs_workspace):
    raw = head_vs_workspace.raw_metrics
    loose = diff_metrics(raw["HEAD"], raw["workspace"], rtol=0.1, atol=0, order=PipelineOrder([]))
    assert loose.changes == [] and loose.within == 1     # acc 0.75 → 0.8 is 6.7 %


def test_vega_specs_from_dvc_are_redrawn_with_both_revisions(repo: Path, tmp_path: Path):
    data = json.loads(run_dvc(repo, "plots", "diff", "HEAD~1", "--json", "-o", str(tmp_path / "img")))["data"]

    curve = chart_from_vega("curve", data["plots/fam/train/curve.csv"][0]["content"])
    assert curve.kind == "line"
    series = {s.label: s for s in curve.series}
    assert set(series) == {"HEAD~1 · loss", "HEAD~1 · acc", "workspace · loss", "workspace · acc"}
    assert series["HEAD~1 · loss"].y == [2.0, 1.0] and series["workspace · loss"].y == [1.5, 0.25]
    assert series["HEAD~1 · loss"].dash_key != series["workspace · loss"].dash_key
    assert series["HEAD~1 · loss"].color_key == series["workspace · loss"].color_key

    conf = chart_from_vega("conf", data["plots/fam/train/confusion.csv"][0]["content"])
    assert conf.kind == "confusion" and list(conf.panels) == ["HEAD~1", "workspace"]
    assert sorted(conf.panels["HEAD~1"]) == [("a", "a"), ("a", "b"), ("b", "b")]
    assert sorted(conf.panels["workspace"]) == [("a", "a"), ("a", "a"), ("b", "a"), ("b", "b")]

    bar = chart_from_vega("snr", data["plots/fam/train/snr.csv"][0]["content"])
    assert bar.kind == "bar"
    assert {s.label: dict(zip(s.x, s.y)) for s in bar.series} == {
        "HEAD~1": {"fc": 3.25, "rnn": 7.5}, "workspace": {"fc": 4.5, "rnn": 7.5}}
    for chart in (curve, conf, bar):
        assert render(chart, tmp_path / f"{chart.kind}.png").stat().st_size > 5000


def test_titles_carry_each_revisions_data_source():
    src = Sources({"workspace": {"metrics/fam/train.json": {"data_source": "real"}},
                   "HEAD~1": {"metrics/fam/train.json": {"data_source": "synthetic"}}})
    assert src.label("plots/fam/train/curve.csv", ["workspace", "HEAD~1"]) == "workspace: real, HEAD~1: synthetic"
    assert src.label("plots/fam/train/curve.csv", ["HEAD~1"]) == "synthetic"
    assert src.label("plots/other/x/curve.csv", ["HEAD~1"]) is None


def test_unknown_revision_is_one_line_error_and_writes_nothing(repo: Path, tmp_path: Path):
    out = tmp_path / "compare"
    proc = subprocess.run([sys.executable, "-m", "dlsys.reporting.compare", "--a", "no-such-rev", "--out", str(out)],
                          cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: 'no-such-rev' is not a commit of the git repository at "
                                                f"{repo.resolve()} (nor `workspace`)"]
    assert not out.exists()


def test_template_it_cannot_draw_gets_a_note_and_its_spec(tmp_path: Path):
    from dlsys.reporting.compare import _vega_block

    spec = {"data": {"values": [{"k": "a", "v": "1", "rev": "HEAD"}]}, "mark": "arc",
            "encoding": {"theta": {"field": "v"}, "color": {"field": "k"}}}
    assert chart_from_vega("pie", spec) is None
    lines = _vega_block("pie", {"content": spec, "revisions": ["HEAD"]}, tmp_path, 0, Sources({}), "HEAD")
    assert "Not rendered offline" in lines[0]
    saved = re.search(r"\]\(([^)]+)\)", lines[0]).group(1)
    assert json.loads((tmp_path / saved).read_text()) == spec
