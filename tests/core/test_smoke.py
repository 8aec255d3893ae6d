"""`make smoke`: the profile's keys all exist, the copy leaves ignored files and the workspace alone."""

import subprocess
from pathlib import Path

import pytest
import yaml

from dlsys.core.overlay import flatten
from dlsys.core.params import check_known_keys, read_yaml
from dlsys.core.smoke import checkout_files, make_copy, merge

ROOT = Path(__file__).resolve().parents[2]


def test_merge_writes_leaves_and_refuses_unknown_keys():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    assert merge(base, {"a": {"c": [5]}}) == {"a": {"b": 1, "c": [5]}, "d": 3}
    assert base["a"]["c"] == [1, 2]  # the base is not modified
    with pytest.raises(KeyError, match="a.x"):
        merge(base, {"a": {"x": 1}})
    with pytest.raises(KeyError, match="d: params.yaml holds a value"):
        merge(base, {"d": {"e": 1}})


def test_smoke_profile_shrinks_every_family_and_only_existing_keys():
    base = read_yaml((ROOT / "params.yaml").read_text())
    smoke = read_yaml((ROOT / "params-smoke.yaml").read_text())
    merged = merge(base, smoke)  # raises on a key params.yaml lacks
    check_known_keys(merged, ROOT / "dvc.yaml")  # and every key is still one a stage reads
    assert {"mnist", "denoise", "signals", "cifar", "generative"} <= set(smoke)
    flat_base, flat_smoke = flatten(base), flatten(smoke)
    # Tiny: every epoch count and dataset size it sets is below the default's.
    for key, value in flat_smoke.items():
        if key.endswith(("epochs", ".n_train", "n_train_sentences", "clips_per_command")):
            assert value < flat_base[key], key
    assert all(v == "synthetic" for k, v in flatten(merged).items() if k.endswith(".source"))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_copy_holds_tracked_and_untracked_files_never_ignored_ones(tmp_path):
    src = tmp_path / "src_repo"
    src.mkdir()
    (src / ".gitignore").write_text("/data/raw/\n")
    (src / "params.yaml").write_text("seed: 0\nmnist:\n  train:\n    epochs: 8\n")
    (src / "tracked.txt").write_text("t")
    _git(src, "init", "-q")
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "x")
    (src / "new.txt").write_text("n")  # untracked, not ignored: the user's work in progress travels
    (src / "data/raw").mkdir(parents=True)
    (src / "data/raw/big.bin").write_text("data")  # ignored: never copied
    assert checkout_files(src) == [".gitignore", "new.txt", "params.yaml", "tracked.txt"]

    dst = tmp_path / "copy"
    dst.mkdir()
    make_copy(src, dst, {"mnist": {"train": {"epochs": 1}}})
    assert yaml.safe_load((dst / "params.yaml").read_text()) == {"seed": 0, "mnist": {"train": {"epochs": 1}}}
    assert (src / "params.yaml").read_text().endswith("epochs: 8\n")  # the workspace is untouched
    assert (dst / "new.txt").exists() and not (dst / "data").exists()
    assert (dst / ".git").is_dir()
