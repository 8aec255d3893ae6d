"""Shared fixtures: a temporary copy of the repository for end-to-end `dvc repro` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY_ITEMS = ["dvc.yaml", "params.yaml", "stages", "src", ".dvc/config", ".dvc/plots", ".dvcignore"]


class RepoCopy:
    """A throw-away copy of the pipeline (code, dvc.yaml, params) in its own git + DVC repo."""

    def __init__(self, path: Path):
        self.path = path

    def set_params(self, updates: dict) -> None:
        """Set dotted keys in the copy's params.yaml: {"data.mnist.n_train": 100}."""
        file = self.path / "params.yaml"
        data = yaml.safe_load(file.read_text())
        for key, value in updates.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = value
        file.write_text(yaml.safe_dump(data, sort_keys=False))

    def env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.path / "src")
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=self.path, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def dvc(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.run(str(Path(sys.executable).parent / "dvc"), *args, check=check, timeout=timeout)

    def stage(self, script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a stage script directly (no DVC), as dvc would."""
        return self.run(sys.executable, script, *args, check=check)


@pytest.fixture
def repo_copy(tmp_path: Path) -> RepoCopy:
    dst = tmp_path / "repo"
    dst.mkdir()
    for item in COPY_ITEMS:
        src = ROOT / item
        if not src.exists():
            continue
        target = dst / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, target)
    # The committed placeholders of data/external/<name>/ (acquire stages list those folders as deps),
    # never the real data a developer keeps beside them.
    for readme in ROOT.glob("data/external/*/README.md"):
        target = dst / readme.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(readme, target)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], cwd=dst, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], cwd=dst,
                   check=True)
    return RepoCopy(dst)
