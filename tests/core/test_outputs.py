import json
import subprocess
import sys

import pytest

from dlsys.core.outputs import atomic_dir, atomic_path, write_json, write_metrics, write_table_csv


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_replaces_whole_directory_or_nothing(tmp_path):
    d = tmp_path / "raw"
    with atomic_dir(d) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(d) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError
    assert sorted(p.name for p in d.iterdir()) == ["a"]
    with atomic_dir(d) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in d.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_metrics_record_source_and_nonfinite_as_null(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_metrics("fam", "step", {"acc": 0.5, "loss": float("nan"), "nested": {"x": float("inf")}},
                         source="synthetic")
    data = json.loads(path.read_text())
    assert data == {"data_source": "synthetic", "acc": 0.5, "loss": None, "nested": {"x": None}}
    with pytest.raises(ValueError):
        write_metrics("fam", "step", {}, source="made-up")


def test_csv_union_header(tmp_path):
    p = write_table_csv(tmp_path / "c.csv", [{"epoch": 1, "a": 0.5}, {"epoch": 2, "b": float("nan")}])
    assert p.read_text().splitlines() == ["epoch,a,b", "1,0.5,", "2,,"]


def test_killed_writer_leaves_previous_file(tmp_path):
    """A process killed in the middle of write_json leaves the old file intact."""
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    code = ("import os, dlsys.core.outputs as o\n"
            f"with o.atomic_path(r'{target}') as t:\n"
            "    t.write_text('{partial')\n"
            "    os._exit(9)\n")
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == 9
    assert json.loads(target.read_text()) == {"v": 1}
