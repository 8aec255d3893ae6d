"""`make smoke`: every stage on tiny sizes, in a throw-away copy of this checkout.

    python -m dlsys.core.smoke [--overlay params-smoke.yaml] [--keep DIR]

The copy holds the checkout's files as git sees them (tracked and untracked, never ignored ones such as
data/, .venv/ or the DVC cache), with the overlay's keys merged into its params.yaml; `dvc repro` runs
there, so the user's workspace, params.yaml, outputs and cache stay as they were. The copy is deleted
afterwards unless --keep names where to leave it.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
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


def run(root: Path, overlay_path: Path, keep: Path | None) -> int:
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
        rc, seconds = repro_in_copy(root, overlay, dst)
    except KeyError as err:
        log.error("%s: %s", overlay_path, err.args[0])
        return 2
    if rc != 0:
        log.error("smoke run failed after %.0f s (dvc repro exit %d); the copy is kept in %s", seconds, rc, dst)
        return rc
    n = len(list((dst / "metrics").rglob("*.json")))
    log.info("smoke run passed: every stage ran in %.0f s (%d metrics files)", seconds, n)
    if keep is None:
        shutil.rmtree(dst, ignore_errors=True)
    else:
        log.info("outputs kept in %s (metrics/, plots/, audio/)", dst)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(prog="python -m dlsys.core.smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--overlay", type=Path, default=Path("params-smoke.yaml"))
    parser.add_argument("--keep", type=Path, default=None, help="leave the copy and its outputs here")
    args = parser.parse_args(argv)
    return run(Path.cwd(), args.overlay, args.keep)


if __name__ == "__main__":
    sys.exit(main())
