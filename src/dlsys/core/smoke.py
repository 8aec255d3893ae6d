"""`make smoke`: every stage on tiny sizes, in a throw-away copy of this checkout.

    python -m dlsys.core.smoke [--overlay params-smoke.yaml] [--keep DIR] [--dvc]

The copy holds the checkout's files as git sees them (tracked and untracked, never ignored ones such as
data/, .venv/ or the DVC cache), with the overlay's keys merged into its params.yaml, so the user's
workspace, params.yaml, outputs and cache stay as they were. The copy is deleted afterwards unless --keep
names where to leave it.

By default the stages run in this one process, in the order of DVC's own stage graph, each exactly as its
dvc.yaml command would run it, and every output the stage declares must exist afterwards. One process
pays Python's and torch's start-up once instead of once per stage, which is most of a tiny run's time
(about 10 s per stage through `dvc repro`). `--dvc` runs `dvc repro` in the copy instead: slower, and it
also exercises DVC's own bookkeeping (lock file, cache).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import runpy
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from dlsys.core.params import read_yaml

log = logging.getLogger("dlsys.smoke")


def merge(base: dict, overlay: dict, prefix: str = "") -> dict:
    """`base` with `overlay`'s leaves written in; a key that `base` lacks is refused (a typo runs nothing)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if key not in out:
            raise KeyError(f"{dotted}: not a key of params.yaml")
        if isinstance(value, dict):
            if not isinstance(out[key], dict):
                raise KeyError(f"{dotted}: params.yaml holds a value here, not a group")
            out[key] = merge(out[key], value, dotted + ".")
        else:
            out[key] = value
    return out


def checkout_files(root: Path) -> list[str]:
    """Files git would see in the checkout: tracked plus untracked-but-not-ignored, that exist."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return sorted({f for f in listed if f and (root / f).is_file()})


def make_copy(root: Path, dst: Path, overlay: dict) -> None:
    for rel in checkout_files(root):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    params = read_yaml((root / "params.yaml").read_text())
    (dst / "params.yaml").write_text(yaml.safe_dump(merge(params, overlay), sort_keys=False))
    git = ["git", "-c", "user.email=smoke@dlsys", "-c", "user.name=smoke"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "smoke copy"]):
        subprocess.run(git + cmd, cwd=dst, check=True)


def repro_in_copy(root: Path, overlay: dict, dst: Path, env_extra: dict | None = None) -> tuple[int, float]:
    """Copy the checkout to `dst` with `overlay` merged into params.yaml and run `dvc repro` there.

    Returns dvc's exit status and the wall time. KeyError: the overlay names a key params.yaml lacks.
    """
    dst.mkdir(parents=True, exist_ok=True)
    make_copy(root, dst, overlay)
    env = dict(os.environ, PYTHONPATH=str(dst / "src"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""), **(env_extra or {}))
    start = time.perf_counter()
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc) if dvc.exists() else (shutil.which("dvc", path=env["PATH"]) or "dvc"), "repro"],
                          cwd=dst, env=env)
    return proc.returncode, time.perf_counter() - start


def stage_plan(root: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, command argv, declared outputs) of every stage in `root`'s pipeline, each after the stages it
    depends on: DVC's own graph (foreach/matrix expanded, interpolation done), ties broken by name."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges run from a stage to the stages whose outputs it reads
        needs = {st: set(graph.successors(st)) for st in graph.nodes}
        return [(st.name, shlex.split(st.cmd), [str(out.def_path) for out in st.outs])
                for st in dependencies_first(needs, key=lambda st: str(getattr(st, "name", st)))
                if getattr(st, "cmd", None)]


def dependencies_first(needs: dict, key) -> list:
    """Nodes ordered so that each comes after everything in its `needs` set; ties by `key` (deterministic).
    ValueError on a cycle (DVC refuses those before we get here)."""
    pending = {n: set(d) for n, d in needs.items()}
    order = []
    while pending:
        ready = sorted((n for n, d in pending.items() if not d), key=key)
        if not ready:
            raise ValueError("the stage graph has a cycle")
        n = ready[0]
        order.append(n)
        del pending[n]
        for d in pending.values():
            d.discard(n)
    return order


@contextmanager
def _stage_process(cwd: Path, argv: list[str]):
    """What a stage's own process would have: its working directory and sys.argv; restored afterwards."""
    saved_cwd, saved_argv = Path.cwd(), sys.argv
    os.chdir(cwd)
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)


def run_stage(root: Path, argv: list[str]) -> int:
    """Run one stage command (`python stages/<x>.py [args]`) in this process; its exit status."""
    if len(argv) < 2 or Path(argv[0]).name not in ("python", "python3") or not argv[1].endswith(".py"):
        raise ValueError(f"not a `python stages/<stage>.py` command: {shlex.join(argv)}")
    with _stage_process(root, [argv[1], *argv[2:]]):
        try:
            runpy.run_path(argv[1], run_name="__main__")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run_in_process(dst: Path) -> tuple[int, float, int]:
    """Every stage of the copy's pipeline in this process. Returns (exit status, seconds, stages run)."""
    start = time.perf_counter()
    plan = stage_plan(dst)
    for i, (name, argv, outs) in enumerate(plan, 1):
        t0 = time.perf_counter()
        rc = run_stage(dst, argv)
        _smoke_logging()
        if rc != 0:
            log.error("stage %s failed (exit %d)", name, rc)
            return rc, time.perf_counter() - start, i
        missing = [o for o in outs if not (dst / o).exists()]
        if missing:
            log.error("stage %s did not write its declared output(s): %s", name, ", ".join(missing))
            return 1, time.perf_counter() - start, i
        log.info("[%d/%d] %s: %.1f s", i, len(plan), name, time.perf_counter() - t0)
    return 0, time.perf_counter() - start, len(plan)


def _smoke_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", force=True)


def run(root: Path, overlay_path: Path, keep: Path | None, use_dvc: bool = False) -> int:
    if not overlay_path.exists():
        log.error("%s: not found (the smoke profile ships with the repository)", overlay_path)
        return 2
    overlay = read_yaml(overlay_path.read_text()) or {}
    if keep and keep.exists() and any(keep.iterdir()):
        log.error("%s: not empty; --keep needs a new or empty folder", keep)
        return 2
    dst = keep or Path(tempfile.mkdtemp(prefix="dlsys-smoke-"))
    log.info("smoke run in %s (profile %s)", dst, overlay_path)
    try:
        if use_dvc:
            rc, seconds = repro_in_copy(root, overlay, dst)
        else:
            dst.mkdir(parents=True, exist_ok=True)
            make_copy(root, dst, overlay)
            rc, seconds, _ = run_in_process(dst)
    except KeyError as err:
        log.error("%s: %s", overlay_path, err.args[0])
        return 2
    if rc != 0:
        log.error("smoke run failed after %.0f s (exit %d); the copy is kept in %s", seconds, rc, dst)
        return rc
    n = len(list((dst / "metrics").rglob("*.json")))
    log.info("smoke run passed: every stage ran in %.0f s (%d metrics files)", seconds, n)
    if keep is None:
        shutil.rmtree(dst, ignore_errors=True)
    else:
        log.info("outputs kept in %s (metrics/, plots/, audio/)", dst)
    return 0


def main(argv: list[str] | None = None) -> int:
    _smoke_logging()
    parser = argparse.ArgumentParser(prog="python -m dlsys.core.smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--overlay", type=Path, default=Path("params-smoke.yaml"))
    parser.add_argument("--keep", type=Path, default=None, help="leave the copy and its outputs here")
    parser.add_argument("--dvc", action="store_true", help="run `dvc repro` in the copy (slower: one process "
                        "per stage, and DVC's lock file and cache are exercised too)")
    args = parser.parse_args(argv)
    return run(Path.cwd(), args.overlay, args.keep, use_dvc=args.dvc)


if __name__ == "__main__":
    sys.exit(main())
