"""`make exp-table`: only what differs between experiments, no timings, one column per experiment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlsys.reporting.compare import run_dvc
from dlsys.reporting.exp_table import exp_table


def _entry(rev: str, lr: float, acc: float, seconds: float, name: str | None = None) -> dict:
    return {"rev": rev, "name": name, "data": {
        "params": {"params.yaml": {"data": {"train": {"lr": lr, "epochs": 2}}}},
        "metrics": {"metrics/fam/train.json": {"data": {"acc": acc, "n": 10, "train_seconds": seconds}}}}}


def test_only_differing_values_no_timings():
    shown = [_entry("workspace", 0.1, 0.5, 1.0),
             {**_entry("a" * 40, 0.1, 0.5, 2.0, name="main"),
              "experiments": [{"name": "fast-lr", "revs": [_entry("b" * 40, 0.2, 0.75, 3.0, name="fast-lr")]}]}]
    md = exp_table(shown)
    lines = md.splitlines()
    assert lines[0] == "| | `workspace` | `main (aaaaaaa)` | `fast-lr (bbbbbbb)` |"
    assert "| param `train.lr` | 0.1 | 0.1 | 0.2 |" in lines
    assert "| metric `fam/train:acc` | 0.5 | 0.5 | 0.75 |" in lines
    assert len(lines) == 4  # header, rule, lr, acc: epochs and n never differ, seconds are timings


def test_one_revision_says_how_to_add_experiments():
    assert "dvc exp run -S" in exp_table([_entry("workspace", 0.1, 0.5, 1.0)])


DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [train.lr]
    metrics:
      - metrics.json:
          cache: false
"""
TRAIN = """\
import json, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
json.dump({"acc": 0.5 + lr, "epochs": 2, "train_seconds": 12.5 * lr}, open("metrics.json", "w"))
"""


@pytest.mark.slow
def test_make_exp_table_on_a_real_experiment(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    run_dvc(repo, "init", "-q")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "train.py").write_text(TRAIN)
    (repo / "params.yaml").write_text("train:\n  lr: 0.1\n  epochs: 2\n")
    # the stage's `python` is this interpreter; dvc exp run commits, so it needs an identity
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "-q"], cwd=repo, check=True, env=env)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "exp", "run", "-q", "-n", "lr02", "-S", "train.lr=0.2"],
                   cwd=repo, check=True, env=env, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "dlsys.reporting.exp_table"], cwd=repo, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "`lr02 (" in lines[0]
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in lines[2:]}
    assert set(rows) == {"param `train.lr`", "metric `metrics:acc`"}
    assert rows["param `train.lr`"][-1] == "0.2" and rows["metric `metrics:acc`"][-1] == "0.7"
