"""`make compare`: a two-commit git + DVC repo whose params, metrics and plots differ → the report shows it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from dlsys.reporting.charts import render
from dlsys.reporting.compare import REPORT_NAME, build_compare, chart_from_vega, run_dvc

DVC_YAML = """\
metrics:
  - metrics/fam/train.json
plots:
  - plots/fam/train/curve.csv:
      x: epoch
      y: [loss, acc]
  - plots/fam/train/confusion.csv:
      template: confusion
      x: actual
      y: predicted
  - plots/fam/train/snr.csv:
      template: bar_horizontal
      x: snr_db
      y: model
  - plots/fam/train/picture.png
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


def _write(repo: Path, lr: float, acc: float, losses: list[float], pairs: list[str], snr: float,
           shade: float, source: str = "synthetic") -> None:
    (repo / "params.yaml").write_text(f"train:\n  lr: {lr}\n  epochs: 2\n")
    (repo / "metrics/fam").mkdir(parents=True, exist_ok=True)
    (repo / "metrics/fam/train.json").write_text(json.dumps({"data_source": source, "acc": acc, "n": 10}))
    d = repo / "plots/fam/train"
    d.mkdir(parents=True, exist_ok=True)
    (d / "curve.csv").write_text("epoch,loss,acc\n" + "".join(f"{i + 1},{v},{acc}\n" for i, v in enumerate(losses)))
    (d / "confusion.csv").write_text("actual,predicted\n" + "".join(f"{p}\n" for p in pairs))
    (d / "snr.csv").write_text(f"model,snr_db\nfc,{snr}\nrnn,7.5\n")
    mpimg.imsave(d / "picture.png", [[shade, 0.0], [0.0, shade]], cmap="gray", vmin=0, vmax=1)


@pytest.fixture(scope="module")
def two_commits(tmp_path_factory) -> Path:
    """Commit 1 (lr 0.1, acc 0.5) is the base; the workspace (lr 0.2, acc 0.75) is committed as commit 2."""
    repo = tmp_path_factory.mktemp("cmp") / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    run_dvc(repo, "init", "-q")
    run_dvc(repo, "config", "core.analytics", "false")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _write(repo, 0.1, 0.5, [2.0, 1.0], ["a,a", "a,b", "b,b"], 3.25, 1.0)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _write(repo, 0.2, 0.75, [1.5, 0.25], ["a,a", "a,a", "b,b", "b,a"], 4.5, 0.5, source="real")
    _git(repo, "commit", "-qam", "change")
    return repo


def _table_row(md: str, key: str) -> list[str]:
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines() if ln.startswith("|")]
    hits = [r for r in rows if key in r]
    assert hits, f"no table row with {key!r} in:\n{md}"
    return hits[0]


pytestmark = pytest.mark.slow


def test_report_shows_metric_param_and_plot_differences(two_commits: Path, tmp_path: Path):
    out = tmp_path / "compare"
    md = build_compare(two_commits, "HEAD~1", out).read_text()
    assert md == (out / REPORT_NAME).read_text()

    metrics = md.split("## Metrics")[1].split("## Params")[0]
    row = _table_row(metrics, "acc")
    assert "0.5" in row and "0.75" in row and "0.25" in row  # base, workspace, change
    assert not [ln for ln in metrics.splitlines() if "| n " in ln]  # unchanged metrics stay out of the diff
    params = md.split("## Params")[1].split("## Plots")[0]
    row = _table_row(params, "train.lr")
    assert "0.1" in row and "0.2" in row
    assert "train.epochs" not in params

    plots = md.split("## Plots")[1]
    for name in ("curve.csv", "confusion.csv", "snr.csv"):
        block = plots.split(f"### plots/fam/train/{name}")[1].split("###")[0]
        png = re.search(r"!\[[^\]]*\]\(([^)]+\.png)\)", block).group(1)
        img = mpimg.imread(out / png)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01, name
        assert "`HEAD~1`" in block and "`workspace`" in block, block
    # the image plot: one column per revision, each its own copy, and they differ
    block = plots.split("### plots/fam/train/picture.png")[1]
    cells = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", block)
    assert sorted(rev for rev, _ in cells) == ["HEAD~1", "workspace"]
    assert cells[0][0] == "HEAD~1"  # base on the left
    a, b = ((out / path).read_bytes() for _, path in cells)
    assert a != b
    assert not (two_commits / "dvc_plots").exists()  # DVC's images went into the report, not the repo


def test_vega_specs_from_dvc_are_redrawn_with_both_revisions(two_commits: Path, tmp_path: Path):
    data = json.loads(run_dvc(two_commits, "plots", "diff", "HEAD~1", "--json", "-o", str(tmp_path / "img")))["data"]

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


def test_titles_carry_each_revisions_data_source(two_commits: Path, tmp_path: Path):
    from dlsys.reporting.compare import Sources

    src = Sources(two_commits, "HEAD~1")
    assert src.label("plots/fam/train/curve.csv", ["workspace", "HEAD~1"]) == "workspace: real, HEAD~1: synthetic"
    assert src.label("plots/fam/train/curve.csv", ["HEAD~1"]) == "synthetic"
    assert src.label("plots/other/x/curve.csv", ["HEAD~1"]) is None


def test_unknown_revision_is_one_line_error_and_writes_nothing(two_commits: Path, tmp_path: Path):
    out = tmp_path / "compare"
    proc = subprocess.run([sys.executable, "-m", "dlsys.reporting.compare", "--rev", "no-such-rev", "--out", str(out)],
                          cwd=two_commits, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: REV='no-such-rev' is not a commit of the git repository at "
                                                f"{two_commits.resolve()}"]
    assert not out.exists()


def test_template_it_cannot_draw_gets_a_note_and_its_spec(tmp_path: Path):
    from dlsys.reporting.compare import Sources, _vega_block

    spec = {"data": {"values": [{"k": "a", "v": "1", "rev": "HEAD"}]}, "mark": "arc",
            "encoding": {"theta": {"field": "v"}, "color": {"field": "k"}}}
    assert chart_from_vega("pie", spec) is None
    lines = _vega_block("pie", {"content": spec, "revisions": ["HEAD"]}, tmp_path, 0, Sources(tmp_path, "HEAD"))
    assert "Not rendered offline" in lines[0]
    saved = re.search(r"\]\(([^)]+)\)", lines[0]).group(1)
    assert json.loads((tmp_path / saved).read_text()) == spec
