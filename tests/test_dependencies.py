"""Dependencies say what the code needs: pyproject.toml, requirements*.txt and constraints.txt agree, every
declared package is imported, every import is declared, and requires-python admits no Python a pin rejects."""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME_DIRS = ("src", "stages", "bench")
# used through its command line as well as imported; listed so the check below does not depend on that
COMMANDS = {"dvc"}
# pytest plugins: pytest loads them through their `pytest11` entry point; no test imports them
PLUGINS = {"pytest-xdist"}


def _pins(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not pinned with =="
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _declared(reqs: list[str]) -> dict[str, SpecifierSet]:
    return {canonicalize_name(Requirement(r).name): Requirement(r).specifier for r in reqs}


RUNTIME = _declared(PYPROJECT["dependencies"])
DEV = _declared(PYPROJECT["optional-dependencies"]["dev"])


@pytest.mark.parametrize("file, declared", [("requirements.txt", RUNTIME), ("requirements-dev.txt", DEV)])
def test_pins_match_pyproject_and_constraints(file: str, declared: dict[str, SpecifierSet]):
    pins = _pins(ROOT / file)
    assert set(pins) == set(declared), f"{file} and pyproject.toml list different packages"
    for name, version in pins.items():
        assert version in declared[name], f"{file} pins {name}=={version}, outside pyproject's {declared[name]}"
    frozen = _pins(ROOT / "constraints.txt")
    for name, version in pins.items():
        assert frozen.get(name) == version, f"constraints.txt has {name}=={frozen.get(name)}, {file} {version}"


def _local_names() -> set[str]:
    names = {"dlsys"}
    for d in ("stages", "bench", "tests"):
        for p in (ROOT / d).rglob("*"):
            if p.suffix == ".py" or (p.is_dir() and not p.name.startswith((".", "__"))):
                names.add(p.stem)
    return names


@functools.cache
def _imports(dirs: tuple[str, ...]) -> dict[str, str]:
    """Top-level third-party module → a file importing it."""
    local, found = _local_names(), {}
    for d in dirs:
        for file in (ROOT / d).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    mods = [node.module]
                else:
                    continue
                for mod in mods:
                    top = mod.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                        found.setdefault(top, str(file.relative_to(ROOT)))
    return found


@functools.cache
def _module_owners() -> dict[str, list[str]]:
    return md.packages_distributions()


def _distributions(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _module_owners().get(module, [])}


def test_every_import_is_declared():
    for extra, dirs, allowed in (("runtime", RUNTIME_DIRS, set(RUNTIME)), ("test", ("tests",), set(RUNTIME) | set(DEV))):
        for module, file in _imports(dirs).items():
            dists = _distributions(module)
            assert dists & allowed, (f"{file} imports {module} ({', '.join(sorted(dists)) or 'not installed'}), "
                                     f"which pyproject.toml does not declare as a {extra} dependency")


def test_every_declared_package_is_used():
    used = set()
    for module in _imports(RUNTIME_DIRS + ("tests",)):
        used |= _distributions(module)
    unused = set(RUNTIME) - used - COMMANDS
    assert not unused, f"declared but never imported: {sorted(unused)}"
    unused_dev = set(DEV) - used - PLUGINS
    assert not unused_dev, f"dev extra lists tools no test imports: {sorted(unused_dev)}"


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
def test_declared_plugins_are_pytest_plugins(plugin: str):
    """A plugin exempted from the import check above must really be one that pytest loads."""
    assert plugin in DEV, f"{plugin} is not in pyproject's dev extra"
    points = md.distribution(plugin).entry_points.select(group="pytest11")
    assert list(points), f"{plugin} declares no pytest11 entry point: it is not a pytest plugin"


def test_requires_python_admits_no_version_a_pin_rejects():
    ours = SpecifierSet(PYPROJECT["requires-python"])
    lowest = next(f"3.{minor}" for minor in range(6, 30) if f"3.{minor}" in ours)
    checked = 0
    for name, version in _pins(ROOT / "constraints.txt").items():
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        if Version(dist.version).release[:3] != version.release[:3]:
            continue  # a different version installed: its metadata says nothing about the pin
        needs = dist.metadata.get("Requires-Python")
        checked += 1
        if needs:
            assert lowest in SpecifierSet(needs), \
                f"requires-python {ours} admits {lowest}, but {name}=={version} needs Python {needs}"
    assert checked > 50  # the pinned environment is what is installed here
