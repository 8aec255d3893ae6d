"""The stage context and `stage_main`: the command line, errors, timings, checkpoints."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dlsys.core.context import StageContext, load_checkpoint, recovery_hint, split_stage_name
from dlsys.core.errors import UserError
from dlsys.core.params import Params

DVC_YAML = """
stages:
  demo_step:
    cmd: python stages/demo_step.py
    deps:
      - stages/demo_step.py
      - data/raw/toy
    params:
      - seed
      - device
      - demo.lr
    outs:
      - data/models/demo/model.pt
      - metrics/demo/step.json:
          cache: false
"""


def _project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "stages").mkdir()
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("seed: 0\ndevice: cpu\ndemo:\n  lr: 0.1\n")
    raw = tmp_path / "data" / "raw" / "toy"
    raw.mkdir(parents=True)
    (raw / "dataset.json").write_text(json.dumps({"source": "synthetic"}))
    script = tmp_path / "stages" / "demo_step.py"
    script.write_text(textwrap.dedent('''\
        """demo_step: a toy stage used by the tests."""
        import errno, logging
        from pathlib import Path
        from dlsys.core.context import stage_main
        from dlsys.core.errors import UserError

        def run(ctx):
        ''') + textwrap.indent(textwrap.dedent(body), "    ") + textwrap.dedent('''
        if __name__ == "__main__":
            stage_main("demo_step", run, __doc__)
        '''))
    return script


def _run(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "stages/demo_step.py", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)


def test_help_describes_the_stage_from_dvc_yaml_and_runs_nothing(tmp_path):
    _project(tmp_path, "Path('ran').write_text('yes')\n")
    proc = _run(tmp_path, "--help")
    assert proc.returncode == 0
    assert "a toy stage used by the tests" in proc.stdout
    assert "demo.lr" in proc.stdout and "data/raw/toy" in proc.stdout and "metrics/demo/step.json" in proc.stdout
    assert not (tmp_path / "ran").exists()


def test_unknown_arguments_are_rejected_before_any_work(tmp_path):
    _project(tmp_path, "Path('ran').write_text('yes')\n")
    proc = _run(tmp_path, "--epochs", "3")
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_a_run_writes_metrics_with_source_and_selection_and_timings_apart(tmp_path):
    _project(tmp_path, """\
        ctx.use_data("toy")
        logging.getLogger("dlsys.demo").info("hello from the task")
        ctx.time(train_seconds=1.5)
        ctx.write_metrics({"acc": 0.5}, selection="final epoch")
        """)
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics/demo/step.json").read_text())
    assert metrics == {"data_source": "synthetic", "acc": 0.5, "selection": "final epoch"}
    timings = json.loads((tmp_path / "timings/demo/step.json").read_text())
    assert timings["train_seconds"] == 1.5 and timings["stage_seconds"] >= 0
    assert any("demo_step" in line and "hello from the task" in line for line in proc.stderr.splitlines())


def test_dlsys_timings_gets_one_line_per_stage_run_with_its_device(tmp_path):
    """bench/bench_pipeline.py and bench/gpu_check.py read the stage times of a whole `dvc repro` from here."""
    _project(tmp_path, "ctx.use_data('toy')\nctx.write_metrics({'acc': 0.5})\n")
    log_file = tmp_path / "times.jsonl"
    env = dict(os.environ, DLSYS_TIMINGS=str(log_file))
    for _ in range(2):
        assert _run(tmp_path, env=env).returncode == 0
    rows = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(rows) == 2 and all(r["stage"] == "demo_step" and r["device"] == "cpu" for r in rows)
    assert all(r["seconds"] >= 0 and "cuda_peak_mb" not in r for r in rows)


@pytest.mark.parametrize("body, message", [
    ("raise UserError('data/raw/x: missing')", "error: data/raw/x: missing"),
    ("raise OSError(errno.ENOSPC, 'No space left on device', 'metrics/demo/step.json')",
     "error: metrics/demo/step.json: No space left on device"),
    ("raise PermissionError(errno.EACCES, 'Permission denied', 'data/models')",
     "error: data/models: Permission denied"),
])
def test_expected_failures_are_one_line_with_the_recovery_route(tmp_path, body, message):
    _project(tmp_path, body + "\n")
    proc = _run(tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(message)
    # DVC removes a stage's outputs before running it: the line says how to get the last good ones back.
    assert "`dvc checkout demo_step`" in last and "`git checkout -- metrics/demo/step.json`" in last


def test_bugs_keep_their_traceback(tmp_path):
    _project(tmp_path, "raise ZeroDivisionError('bug')\n")
    proc = _run(tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_recovery_hint_only_when_outputs_are_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    assert "dvc checkout demo_step" in recovery_hint("demo_step")
    for out in ("data/models/demo/model.pt", "metrics/demo/step.json"):
        (tmp_path / out).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / out).write_text("x")
    assert recovery_hint("demo_step") == ""


def test_paths_follow_family_and_step():
    assert split_stage_name("mnist_train_mlp") == ("mnist", "train_mlp")
    assert split_stage_name("acquire_cifar10") == ("data", "cifar10")
    ctx = StageContext("cifar_train", Params({}), torch.device("cpu"), torch.Generator(), 0, variant="baseline")
    assert ctx.step == "train_baseline"
    assert ctx.metrics_path == Path("metrics/cifar/train_baseline.json")
    assert ctx.plots_dir == Path("plots/cifar/train_baseline")
    assert ctx.audio_dir == Path("audio/cifar/train_baseline")


def test_a_diverged_model_is_saved_marked_and_refused_downstream(tmp_path):
    ctx = StageContext("demo_step", Params({}), torch.device("cpu"), torch.Generator(), 0)
    good, bad = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    assert ctx.save_checkpoint(tmp_path / "good.pt", good, {"in": 2}) is True
    assert load_checkpoint(tmp_path / "good.pt")["config"] == {"in": 2}
    assert ctx.save_checkpoint(tmp_path / "bad.pt", bad, {"in": 2}) is False
    with pytest.raises(UserError, match="diverged.*re-run demo_step"):
        load_checkpoint(tmp_path / "bad.pt")


def test_source_is_real_only_when_every_dataset_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, source in (("a", "real"), ("b", "synthetic")):
        (tmp_path / "data/raw" / name).mkdir(parents=True)
        (tmp_path / "data/raw" / name / "dataset.json").write_text(json.dumps({"source": source}))
    ctx = StageContext("demo_step", Params({}), torch.device("cpu"), torch.Generator(), 0)
    assert ctx.use_data("a") == "real"
    assert ctx.use_data("b") == "synthetic"
    (tmp_path / "data/raw/a/dataset.json").write_text('{"sour')
    with pytest.raises(UserError, match="unreadable"):
        ctx.use_data("a")
    with pytest.raises(UserError, match="acquire_missing"):
        ctx.use_data("missing")


@pytest.mark.parametrize("value, ok", [("1", True), ("0", False), ("two", False)])
def test_threads_env_caps_torch_threads_or_fails_in_one_line(tmp_path, value, ok):
    _project(tmp_path, "import torch; Path('threads').write_text(str(torch.get_num_threads()))\n")
    proc = subprocess.run([sys.executable, "stages/demo_step.py"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "DLSYS_THREADS": value}, timeout=120)
    if ok:
        assert proc.returncode == 0 and (tmp_path / "threads").read_text() == value
    else:
        assert proc.returncode == 2 and "DLSYS_THREADS must be a positive integer" in proc.stderr
        assert "Traceback" not in proc.stderr
