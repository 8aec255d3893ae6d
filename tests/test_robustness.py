"""Bad input and faults, table-driven: every case gives one clear error line (no traceback for expected
user errors) and leaves nothing half-written; conversions warn; divergence is recorded, not a crash."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from dlsys.data.idx import write_idx
from dlsys.data.safe_pickle import dump_pickle

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def _meta(d: Path, source: str = "real", **extra) -> None:
    (d / "dataset.json").write_text(json.dumps({"source": source, "sr": SR, **extra}))


def _mnist(d: Path) -> None:
    for name, arr in (("train-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8)),
                      ("train-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8)),
                      ("t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8)),
                      ("t10k-labels-idx1-ubyte.gz", np.arange(2, dtype=np.uint8))):
        write_idx(d / name, arr)
    _meta(d)


def _denoise(d: Path, n: int = 8000) -> None:
    t = np.arange(n) / SR
    s = 0.3 * np.sin(2 * np.pi * 220 * t)
    for name, x in (("train_clean_male.wav", s), ("train_dirty_male.wav", s + 0.05),
                    ("test_01_s.wav", s), ("test_01_x.wav", s + 0.05), ("test_02_x.wav", s)):
        sf.write(d / name, x.astype(np.float32), SR, subtype="PCM_16")
    _meta(d)


def _sevens(d: Path) -> None:
    dump_pickle(np.zeros((3, 28, 28), np.float32), d / "tr7.pkl")
    dump_pickle(np.zeros((2, 28, 28), np.float32), d / "te7.pkl")
    _meta(d)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass
class Case:
    id: str
    dataset: str
    setup: Callable[[Path], None]
    error: str | None  # regex of the one error line; None = must succeed
    warning: str | None = None
    forbid: str | None = None  # a file (relative to the data dir) that must never appear


def _truncate_idx(d):
    _mnist(d)
    p = d / "train-images-idx3-ubyte.gz"
    import gzip
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-100]))


def _other_rate_stereo(d):
    _denoise(d)
    t = np.arange(4000) / 8000
    s = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(d / "test_02_x.wav", np.stack([s, s], 1).astype(np.float32), 8000)


def _empty_wav(d):
    _denoise(d)
    sf.write(d / "test_02_x.wav", np.zeros(0, np.float32), SR)


def _nan_wav(d):
    _denoise(d)
    x = np.zeros(100, np.float32)
    x[5] = np.nan
    sf.write(d / "test_02_x.wav", x, SR, subtype="FLOAT")


def _mismatched(d):
    _denoise(d)
    sf.write(d / "train_dirty_male.wav", np.zeros(7000, np.float32), SR, subtype="PCM_16")


def _wrong_shape_pickle(d):
    _sevens(d)
    dump_pickle(np.zeros((3, 30, 30), np.float32), d / "tr7.pkl")


def _hostile_pickle(d):
    _sevens(d)
    (d / "tr7.pkl").write_bytes(pickle.dumps(_Evil(d / "PWNED"), protocol=2))


def _missing_files(d):
    _sevens(d)
    (d / "te7.pkl").unlink()


CASES = [
    Case("missing-dataset-dir", "mnist", lambda d: d.rmdir(), r"dataset directory not found; run `dvc repro acquire_"),
    Case("missing-file", "sevens", _missing_files, r"te7\.pkl: file not found"),
    Case("truncated-idx", "mnist", _truncate_idx, r"train-images-idx3-ubyte\.gz: truncated"),
    Case("other-rate-stereo-wav", "denoise", _other_rate_stereo, None, warning=r"resampling to 16000"),
    Case("empty-wav", "denoise", _empty_wav, r"test_02_x\.wav: empty audio file"),
    Case("nan-samples", "denoise", _nan_wav, r"test_02_x\.wav: contains NaN"),
    Case("mismatched-clean-noisy", "denoise", _mismatched, r"train_clean_male\.wav.*same length"),
    Case("wrong-shape-pickle", "sevens", _wrong_shape_pickle, r"tr7\.pkl: expected an N×28×28"),
    Case("hostile-pickle", "sevens", _hostile_pickle, r"tr7\.pkl: refused", forbid="PWNED"),
]


def _check(dataset: str, raw: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlsys.data.check", dataset, "--raw-dir", str(raw)],
                          capture_output=True, text=True, cwd=raw.parent)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path):
    raw = tmp_path / case.dataset
    raw.mkdir()
    case.setup(raw)
    proc = _check(case.dataset, raw)
    assert "Traceback" not in proc.stderr, proc.stderr
    if case.error is None:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, proc.stderr
        assert re.search(case.error, errors[0]), errors[0]
    if case.warning:
        assert re.search(case.warning, proc.stderr), proc.stderr
    if case.forbid:
        assert not (raw / case.forbid).exists(), "the pickle's payload ran"


@pytest.mark.parametrize("key, value, message", [
    ("data.mnist.n_train", "many", "'data.mnist.n_train' must be an integer"),
    ("data.mnist.n_train", -5, "'data.mnist.n_train' must be >= 10"),
    ("data.mnist.source", "internet", "'data.mnist.source' must be one of synthetic, real"),
    ("data.mnist.scale", 1.0, "'data.mnist.scale' must be a list"),
])
def test_bad_param_fails_at_start_naming_the_key(repo_copy, key, value, message):
    repo_copy.set_params({key: value})
    t0 = time.perf_counter()
    proc = repo_copy.stage("stages/acquire.py", "mnist", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert time.perf_counter() - t0 < 60
    assert not (repo_copy.path / "data/raw/mnist").exists()


@pytest.mark.slow
def test_stage_killed_mid_write_leaves_no_partial_output_and_rerun_succeeds(repo_copy):
    repo_copy.set_params({"data.mnist.n_train": 20000, "data.mnist.n_test": 100})
    proc = subprocess.Popen([sys.executable, "stages/acquire.py", "mnist"], cwd=repo_copy.path,
                            env=repo_copy.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw_root = repo_copy.path / "data/raw"
    deadline = time.time() + 120
    # kill it while it is writing into its temporary directory
    while time.time() < deadline and not (raw_root.exists() and any(raw_root.glob(".mnist.*"))):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (raw_root / "mnist").exists(), "a killed stage must not leave a half-written dataset"
    repo_copy.set_params({"data.mnist.n_train": 60, "data.mnist.n_test": 20})
    repo_copy.dvc("repro", "acquire_mnist")
    files = sorted(p.name for p in (raw_root / "mnist").iterdir())
    assert "dataset.json" in files and len(files) == 5


@pytest.mark.slow
def test_diverging_run_is_recorded_and_stage_completes(repo_copy):
    repo_copy.set_params({"data.mnist.n_train": 200, "data.mnist.n_test": 50,
                          "mnist.init_study.epochs": 3, "mnist.init_study.sgd.lr": 1.0e30,
                          "mnist.init_study.hidden": [16, 16, 16, 16, 16]})
    repo_copy.stage("stages/acquire.py", "mnist")
    proc = repo_copy.stage("stages/mnist_init_study.py", "sgd", check=False)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((repo_copy.path / "metrics/mnist/init_study_sgd.json").read_text())
    assert "diverged" in json.dumps(metrics)
    flags = [v for v in _walk(metrics) if isinstance(v, dict) and "diverged" in v]
    assert any(f["diverged"] is True for f in flags), metrics


def _walk(obj):
    yield obj
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
