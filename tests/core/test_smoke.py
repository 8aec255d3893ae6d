"""`make smoke`: the profile's keys all exist, the copy leaves ignored files and the workspace alone, the
in-process runner follows DVC's stage graph and runs each command as its own process would."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlsys.core.overlay import flatten
from dlsys.core.params import check_known_keys, read_yaml
from dlsys.core.smoke import checkout_files, dependencies_first, make_copy, merge, run_stage, stage_plan

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


def test_dependencies_come_first_ties_by_name_and_cycles_are_refused():
    needs = {"c": {"a"}, "b": {"a"}, "a": set(), "d": {"b", "c"}}
    assert dependencies_first(needs, key=str) == ["a", "b", "c", "d"]
    assert dependencies_first({"z": set(), "y": {"z"}, "x": set()}, key=str) == ["x", "z", "y"]
    with pytest.raises(ValueError, match="cycle"):
        dependencies_first({"a": {"b"}, "b": {"a"}}, key=str)


def test_stage_plan_is_every_dvc_stage_after_what_it_reads():
    """The plan is DVC's own view of dvc.yaml: every stage (foreach/matrix expanded) once, each after the
    stages that write its deps. Bug caught: a stage run before its inputs exist, or one left out."""
    plan = stage_plan(ROOT)
    names = [name for name, _, _ in plan]
    assert len(names) == len(set(names))
    listed = subprocess.run([str(Path(sys.executable).parent / "dvc"), "stage", "list", "--name-only"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split()
    assert sorted(names) == sorted(listed)
    written_by = {out: name for name, _, outs in plan for out in outs}
    position = {name: i for i, name in enumerate(names)}
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    checked = 0
    for name, argv, _ in plan:
        assert argv[0] == "python" and argv[1].startswith("stages/"), argv
        body = dvc_yaml[name.split("@")[0]]
        for dep in body.get("do", body).get("deps", []):
            producer = written_by.get(dep)
            if producer is not None:
                assert position[producer] < position[name], (producer, name)
                checked += 1
    assert checked > 20  # the graph's edges were actually seen


def test_run_stage_runs_the_script_as_main_in_the_copy_and_reports_its_exit(tmp_path, monkeypatch):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/ok.py").write_text(
        "import sys, pathlib\nif __name__ == '__main__':\n"
        "    pathlib.Path('out.txt').write_text(' '.join(sys.argv[1:]))\n")
    (tmp_path / "stages/fails.py").write_text("import sys\nif __name__ == '__main__':\n    sys.exit(2)\n")
    here, argv = Path.cwd(), list(sys.argv)
    assert run_stage(tmp_path, ["python", "stages/ok.py", "fc"]) == 0
    assert (tmp_path / "out.txt").read_text() == "fc"  # its working directory and its arguments
    assert run_stage(tmp_path, ["python", "stages/fails.py"]) == 2
    assert Path.cwd() == here and sys.argv == argv  # both restored
    with pytest.raises(ValueError, match="not a `python stages"):
        run_stage(tmp_path, ["bash", "-c", "rm -rf /"])
