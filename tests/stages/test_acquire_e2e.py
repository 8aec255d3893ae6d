"""`dvc repro` of the image acquisition stages in a temporary copy of the repository."""

import json

import pytest

TINY = {
    "data.mnist.n_train": 60, "data.mnist.n_test": 30,
    "data.sevens.n_train": 30, "data.sevens.n_test": 20,
    "data.cifar10.n_train": 50, "data.cifar10.n_test": 20,
}


@pytest.mark.slow
def test_acquisition_stages_repro_and_are_cached(repo_copy):
    repo_copy.set_params(TINY)
    repo_copy.dvc("repro", "acquire_mnist", "acquire_sevens", "acquire_cifar10")
    root = repo_copy.path
    for name in ("mnist", "sevens", "cifar10"):
        meta = json.loads((root / "data/raw" / name / "dataset.json").read_text())
        assert meta["source"] == "synthetic"
        metrics = json.loads((root / "metrics/data" / f"{name}.json").read_text())
        assert metrics["data_source"] == "synthetic"
        assert (root / "plots/data" / name / "samples.png").stat().st_size > 1000
    assert json.loads((root / "data/raw/mnist/dataset.json").read_text())["n_train"] == 60
    # nothing changed: a second repro runs no stage
    again = repo_copy.dvc("repro", "acquire_mnist", "acquire_sevens", "acquire_cifar10")
    assert "Running stage" not in again.stdout
    # changing one dataset's param re-runs only that dataset
    repo_copy.set_params({"data.sevens.n_test": 21})
    third = repo_copy.dvc("repro", "acquire_mnist", "acquire_sevens", "acquire_cifar10")
    assert "Running stage 'acquire_sevens'" in third.stdout
    assert "Running stage 'acquire_mnist'" not in third.stdout


@pytest.mark.slow
def test_acquire_stage_reports_user_errors_in_one_line(repo_copy):
    repo_copy.set_params({"data.sevens.source": "real"})
    proc = repo_copy.stage("stages/acquire.py", "sevens", check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "tr7.pkl" in proc.stderr and "te7.pkl" in proc.stderr
    proc = repo_copy.stage("stages/acquire.py", "nosuchset", check=False)
    assert proc.returncode == 2 and "unknown dataset" in proc.stderr
