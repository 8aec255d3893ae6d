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


def _digests(root, paths):
    import hashlib

    files = sorted(f for p in paths for f in ((root / p).rglob("*") if (root / p).is_dir() else [root / p])
                   if f.is_file())
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest() for f in files}


@pytest.mark.slow
def test_failed_rerun_says_how_to_restore_and_the_restore_works(repo_copy):
    """DVC deletes a stage's outputs before running it; when the run then fails, the one-line error names
    `dvc checkout <stage>` (cached outputs) and `git checkout` (committed ones), and both bring back the
    last good outputs byte for byte."""
    root = repo_copy.path
    repo_copy.set_params({"data.sevens.n_train": 30, "data.sevens.n_test": 20})
    repo_copy.dvc("repro", "acquire_sevens")
    repo_copy.run("git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    repo_copy.run("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "good run")
    outs = ["data/raw/sevens", "metrics/data/sevens.json", "plots/data/sevens"]
    good = _digests(root, outs)
    assert any(k.startswith("data/raw/sevens/") for k in good) and "metrics/data/sevens.json" in good

    repo_copy.set_params({"data.sevens.source": "real"})  # the course files are not there: the stage fails
    failed = repo_copy.dvc("repro", "acquire_sevens", check=False)
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "Traceback" not in said
    assert not (root / "data/raw/sevens").exists()  # DVC removed the previous outputs before the run
    assert "`dvc checkout acquire_sevens`" in said
    assert "`git checkout -- metrics/data/sevens.json plots/data/sevens`" in said

    repo_copy.dvc("checkout", "acquire_sevens")
    repo_copy.run("git", "checkout", "--", "metrics/data/sevens.json", "plots/data/sevens")
    assert _digests(root, outs) == good
