"""Atomic file outputs and the one metrics/plots writer every stage uses.

Nothing a stage writes is ever half-written: files go to a temporary sibling and are renamed into
place, directories are built under a temporary name and swapped in at the end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

METRICS_ROOT = Path("metrics")
PLOTS_ROOT = Path("plots")
AUDIO_ROOT = Path("audio")
# Wall times and throughput: useful, but not results. Kept out of metrics/ (and out of git and dvc.lock) so
# `dvc metrics diff` shows only what a change did to the numbers.
TIMINGS_ROOT = Path("timings")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces `path` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _json_safe(obj: Any) -> Any:
    """JSON has no NaN/inf: store them as null (the stage records *why* in another key)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return _json_safe(obj.item())  # numpy / torch scalars
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n")
    return path


def write_table_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Rows of dicts → CSV with the union of their keys as header (in first-seen order)."""
    rows = [dict(r) for r in rows]
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            for r in rows:
                w.writerow({k: _csv_value(r.get(k)) for k in header})
    return path


def _csv_value(v: Any) -> Any:
    v = _json_safe(v)
    return "" if v is None else v


def write_metrics(family: str, step: str, metrics: Mapping[str, Any], source: str) -> Path:
    """metrics/<family>/<step>.json, always recording which data the numbers come from."""
    if source not in ("synthetic", "real"):
        raise ValueError(f"data source must be 'synthetic' or 'real', got {source!r}")
    return write_json(METRICS_ROOT / family / f"{step}.json", {"data_source": source, **metrics})


def write_timings(family: str, step: str, timings: Mapping[str, Any]) -> Path:
    """timings/<family>/<step>.json: a stage's wall times and throughput (not a DVC metric)."""
    return write_json(TIMINGS_ROOT / family / f"{step}.json", dict(timings))


def save_torch(obj: Any, path: str | Path) -> Path:
    """torch.save, atomically and byte-reproducibly.

    torch names the records inside its zip after the file it writes to; saving straight to the random
    temporary name made every run's bytes differ. Serialising to memory gives fixed record names.
    """
    import io

    import torch

    path = Path(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """Load a checkpoint this project wrote; weights_only refuses arbitrary pickled code."""
    import torch

    from dlsys.core.errors import MissingDataError

    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: model file not found; run the stage that produces it (dvc repro)")
    return torch.load(path, map_location=map_location, weights_only=True)
