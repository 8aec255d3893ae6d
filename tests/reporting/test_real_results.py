"""results/real/: a family's real-data metrics and plots are copied with their provenance; synthetic is refused."""

import json
import subprocess

import pytest

from dlsys.reporting.real_results import export, main


def _run_dir(root, source="real"):
    (root / "metrics/mnist").mkdir(parents=True)
    (root / "metrics/data").mkdir(parents=True)
    (root / "plots/mnist/train_mlp").mkdir(parents=True)
    (root / "metrics/mnist/train_mlp.json").write_text(json.dumps({"data_source": source, "test_acc": 0.988}))
    (root / "metrics/data/mnist.json").write_text(json.dumps({"data_source": source, "n_train": 60000}))
    (root / "plots/mnist/train_mlp/curves.csv").write_text("epoch,loss\n1,0.5\n")
    return root


def test_export_copies_metrics_plots_and_records_the_run(tmp_path):
    src = _run_dir(tmp_path / "run")
    subprocess.run(["git", "init", "-q"], cwd=src, check=True)
    out = tmp_path / "results"
    (out / "metrics/mnist").mkdir(parents=True)
    (out / "metrics/mnist/stale.json").write_text("{}")  # a step the new run no longer has goes away
    assert main(["--from", str(src), "--family", "mnist", "--command", "make repro-real", "--wall-seconds", "61.4",
                 "--data", "kit MNIST", "--datasets", "mnist", "--out", str(out)]) == 0
    assert json.loads((out / "metrics/mnist/train_mlp.json").read_text())["test_acc"] == 0.988
    assert not (out / "metrics/mnist/stale.json").exists()
    assert (out / "plots/mnist/train_mlp/curves.csv").exists()
    assert json.loads((out / "metrics/data/mnist.json").read_text())["n_train"] == 60000
    runs = json.loads((out / "runs.json").read_text())
    assert runs["mnist"]["command"] == "make repro-real" and runs["mnist"]["wall_seconds"] == 61
    assert runs["mnist"]["datasets"] == ["mnist"]


def test_synthetic_metrics_are_refused_and_nothing_is_written(tmp_path):
    src = _run_dir(tmp_path / "run", source="synthetic")
    out = tmp_path / "results"
    with pytest.raises(SystemExit, match="not real data in train_mlp.json"):
        export(src, "mnist", out, {"datasets": ["mnist"]})
    assert not out.exists()


def test_steps_limit_the_copy_to_the_steps_that_ran_on_real_data(tmp_path):
    src = _run_dir(tmp_path / "run")
    (src / "metrics/mnist/init_study.json").write_text(json.dumps({"data_source": "synthetic"}))
    (src / "plots/mnist/init_study").mkdir(parents=True)
    out = tmp_path / "results"
    export(src, "mnist", out, {"datasets": []}, steps=["train_mlp"])
    assert sorted(p.name for p in (out / "metrics/mnist").iterdir()) == ["train_mlp.json"]
    assert sorted(p.name for p in (out / "plots/mnist").iterdir()) == ["train_mlp"]
