"""Stage deps that cannot drift: each stage's `src/dlsys` deps in dvc.yaml are its script's module graph.

dvc.yaml must list every file a stage's code comes from, or DVC will not re-run the stage when that file
changes. Lists kept by hand drift, so they are computed: every `dlsys` import of the stage script,
transitively (imports inside functions included). `python -m dlsys.core.deps` checks dvc.yaml;
`--write` rewrites the `src/dlsys/...` entries of every stage's deps in place (comments and all other
deps kept), and tests/test_architecture.py fails when they differ.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

SCRIPT = re.compile(r"stages/\w+\.py")
SRC_PREFIX = "src/dlsys/"


def module_file(src: Path, module: str) -> Path | None:
    """dlsys.a.b → src/dlsys/a/b.py or src/dlsys/a/b/__init__.py (None for a name inside a module)."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def direct_imports(src: Path, path: Path) -> set[str]:
    """Every dlsys module a file imports, at any depth of the file (function-level imports count)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(src).with_suffix("").parts[:-1]) if path.is_relative_to(src) else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import inside the package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in [*parts, base] if p)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "dlsys" or name.startswith("dlsys."):
                parts = name.split(".")
                # importing dlsys.a.b runs dlsys/__init__, dlsys/a/__init__ and dlsys/a/b
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in found if module_file(src, m) is not None}


def is_empty_package(path: Path) -> bool:
    """An __init__.py holding only a docstring cannot change what a stage computes."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def module_graph(src: Path, script: Path) -> set[Path]:
    """The files of every dlsys module a script imports, transitively (docstring-only packages aside)."""
    seen: set[str] = set()
    todo = list(direct_imports(src, script))
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo += [m for m in direct_imports(src, module_file(src, mod)) if m not in seen]
    return {f for f in (module_file(src, m) for m in seen) if f is not None and not is_empty_package(f)}


def stage_bodies(dvc_yaml: dict) -> dict[str, dict]:
    """Stage name → its body (the `do:` body for foreach stages)."""
    return {name: st.get("do", st) for name, st in dvc_yaml["stages"].items()}


def _dep_path(dep) -> str:
    return dep if isinstance(dep, str) else next(iter(dep))


# The acquire stage imports a dataset's module by name (data/registry.py: SPEC_MODULES), so its static
# graph depends on the dataset argument of its command.
ACQUIRE = re.compile(r"stages/acquire\.py\s+(\w+)")
REGISTRY = "src/dlsys/data/registry.py"


def spec_modules(root: Path) -> dict[str, str]:
    """The SPEC_MODULES literal of the dataset registry, read without importing it."""
    tree = ast.parse((root / REGISTRY).read_text())
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                isinstance(t, ast.Name) and t.id == "SPEC_MODULES" for t in targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{REGISTRY}: no SPEC_MODULES mapping")


def required_src(root: Path, body: dict) -> list[str]:
    """The `src/dlsys/...` files a stage body's script(s) import, sorted, relative to the repository."""
    src = root / "src"
    cmd = str(body.get("cmd", ""))
    files: set[Path] = set()
    for script in SCRIPT.findall(cmd):
        files |= module_graph(src, root / script)
    for dataset in ACQUIRE.findall(cmd):
        module = spec_modules(root).get(dataset)
        if module is not None:
            files.add(module_file(src, module))
            files |= {f for m in direct_imports(src, module_file(src, module))
                      for f in module_graph(src, module_file(src, m)) | {module_file(src, m)}
                      if not is_empty_package(f)}
    return sorted(f.relative_to(root).as_posix() for f in files)


def missing_deps(root: Path, dvc_yaml: dict) -> list[tuple[str, str]]:
    """(stage, file) for every imported file, or the script itself, that the stage's deps do not cover."""
    problems = []
    for name, body in stage_bodies(dvc_yaml).items():
        deps = [_dep_path(d).rstrip("/") for d in body.get("deps", [])]
        deps = [d for d in deps if "${" not in d]
        scripts = SCRIPT.findall(str(body.get("cmd", "")))
        for rel in [*scripts, *required_src(root, body)]:
            if not any(rel == d or rel.startswith(d + "/") for d in deps):
                problems.append((name, rel))
    return problems


def write_deps(root: Path, dvc_path: Path) -> int:
    """Replace each stage's src/dlsys deps by its module graph (round-trip YAML keeps comments)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(dvc_path.read_text())
    changed = 0
    for name, body in stage_bodies(data).items():
        deps = body.get("deps")
        if deps is None:
            continue
        wanted = required_src(root, body)
        current = [_dep_path(d) for d in deps if _dep_path(d).startswith(SRC_PREFIX)]
        if current == wanted:
            continue
        keep = [d for d in deps if not _dep_path(d).startswith(SRC_PREFIX)]
        first_src = next((i for i, d in enumerate(deps) if _dep_path(d).startswith(SRC_PREFIX)), len(keep))
        new = keep[:first_src] + wanted + keep[first_src:]
        deps.clear()
        deps.extend(new)
        changed += 1
    if changed:
        import io

        buf = io.StringIO()
        yaml.dump(data, buf)
        dvc_path.write_text(buf.getvalue())
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the src/dlsys deps in dvc.yaml")
    ap.add_argument("--root", default=".", help="repository root (default: .)")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    dvc_path = root / "dvc.yaml"
    if args.write:
        n = write_deps(root, dvc_path)
        print(f"dvc.yaml: src deps rewritten for {n} stage(s)")
        return 0
    import yaml

    problems = missing_deps(root, yaml.safe_load(dvc_path.read_text()))
    for stage, file in problems:
        print(f"{stage}: missing dep {file}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
