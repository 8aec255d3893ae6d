"""The shape of the code base: stage deps in dvc.yaml cannot drift from the imports, imports run down the
layers, stage scripts stay thin.

dvc.yaml lists each stage's script and the `src/dlsys` files it imports; a missing one means DVC would
not re-run the stage when that file changes. Rather than trust the list, compute each script's module
graph (every `dlsys` import, transitively, including imports inside functions) and compare.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dlsys.core.deps import direct_imports, missing_deps, stage_bodies

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LAYERS = ["core", "data", "features", "models", "training", "compression", "evaluation", "plots", "reporting",
          "tasks"]
MAX_STAGE_LINES = 60


def _dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_every_stage_lists_every_file_it_imports():
    problems = missing_deps(ROOT, _dvc_yaml())
    assert not problems, "dvc.yaml deps are missing (fix: python -m dlsys.core.deps --write):\n" + "\n".join(f"  {s}: {f}" for s, f in problems)


def test_deleting_one_dep_line_is_caught():
    """The check itself can fail: drop one src/ dep of a stage and it must name that stage and file."""
    data = _dvc_yaml()
    name, body = next((n, b) for n, b in stage_bodies(data).items()
                      if any(isinstance(d, str) and d.startswith("src/dlsys/") and d.endswith(".py")
                             for d in b.get("deps", [])))
    dropped = next(d for d in body["deps"] if isinstance(d, str) and d.startswith("src/dlsys/") and d.endswith(".py"))
    body["deps"].remove(dropped)
    assert (name, dropped) in missing_deps(ROOT, data)


def test_every_stage_script_is_run_by_a_stage():
    cmds = " ".join(str(b.get("cmd", "")) for b in stage_bodies(_dvc_yaml()).values())
    orphans = [p.name for p in (ROOT / "stages").glob("*.py") if f"stages/{p.name}" not in cmds]
    assert not orphans, f"stage scripts no stage runs (library code belongs in src/dlsys): {orphans}"


@pytest.mark.parametrize("script", sorted((ROOT / "stages").glob("*.py")), ids=lambda p: p.name)
def test_stage_scripts_are_thin(script):
    lines = [line for line in script.read_text().splitlines() if line.strip()]
    assert len(lines) <= MAX_STAGE_LINES, f"{script.name}: {len(lines)} lines; move the recipe to src/dlsys/tasks"


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def upward_imports() -> list[str]:
    problems = []
    for path in sorted((SRC / "dlsys").rglob("*.py")):
        mod = ".".join(path.relative_to(SRC).with_suffix("").parts)
        own = layer_of(mod)
        if own is None:
            continue
        for imported in direct_imports(SRC, path):
            other = layer_of(imported)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                problems.append(f"{path.relative_to(ROOT)} ({own}) imports {imported} ({other})")
    return problems


def test_imports_run_down_the_layers():
    problems = upward_imports()
    assert not problems, "upward imports:\n" + "\n".join(problems)
