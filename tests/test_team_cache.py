"""A team's shared cache: outputs pushed from one clone are pulled by another, which then runs no stage;
experiments move between clones with `dvc exp push/pull`.

Runs on a tiny slice of the pipeline (the sevens acquisition stage) in throw-away repositories: a bare git
"origin", a local-directory DVC remote, and two clones.
"""

import json
import shutil
import subprocess

import pytest

TINY = {"data.sevens.n_train": 30, "data.sevens.n_test": 20}
GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]


def _git(path, *args):
    return subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True, text=True)


@pytest.mark.slow
def test_pull_from_a_shared_remote_then_repro_runs_nothing(repo_copy, tmp_path):
    a = repo_copy
    remote, origin = tmp_path / "dvc-remote", tmp_path / "origin.git"
    a.set_params(TINY)
    a.dvc("remote", "add", "-d", "team", str(remote))
    a.dvc("repro", "acquire_sevens")
    _git(a.path, "add", "-A")
    _git(a.path, "commit", "-qm", "sevens acquired")
    a.dvc("push", "--run-cache", "acquire_sevens")
    assert any(remote.rglob("*")), "nothing was pushed to the remote"
    _git(tmp_path, "init", "-q", "--bare", str(origin))
    _git(a.path, "push", "-q", str(origin), "HEAD:refs/heads/main")
    _git(a.path, "remote", "add", "origin", str(origin))

    b_path = tmp_path / "clone-b"
    _git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(b_path))
    b = type(a)(b_path)
    assert not (b_path / "data/raw/sevens").exists()
    b.dvc("pull", "--run-cache", "acquire_sevens")
    assert json.loads((b_path / "data/raw/sevens/dataset.json").read_text())["n_train"] == 30
    repro = b.dvc("repro", "acquire_sevens")
    assert "Running stage" not in repro.stdout and "didn't change" in repro.stdout
    assert "changed" not in b.dvc("status", "acquire_sevens").stdout

    # An experiment run in clone A reaches clone B through git and the DVC remote.
    a.dvc("exp", "run", "-n", "more-sevens", "-S", "data.sevens.n_test=25", "acquire_sevens")
    a.dvc("exp", "push", "origin", "more-sevens")
    b.dvc("exp", "pull", "origin", "more-sevens")
    shown = b.dvc("exp", "show", "--json").stdout
    assert "more-sevens" in shown
    # `dvc exp apply` would check out every stage's outputs; this slice only has one, so take the
    # experiment as a branch and check out that stage: its data must come from what exp pull fetched.
    b.dvc("exp", "branch", "more-sevens", "more-sevens-branch")
    _git(b_path, "checkout", "-q", "more-sevens-branch")
    shutil.rmtree(remote)  # nothing may be fetched from the remote any more
    b.dvc("checkout", "acquire_sevens")
    assert json.loads((b_path / "data/raw/sevens/dataset.json").read_text())["n_test"] == 25
