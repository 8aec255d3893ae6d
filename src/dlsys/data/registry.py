"""The dataset registry: one `DatasetSpec` per dataset, real and synthetic sources behind one interface.

`acquire(name, params)` (stages/acquire.py) builds `data/raw/<name>/` atomically in the dataset's
native format and writes `data/raw/<name>/dataset.json` recording the source actually used. Downstream
stages read only `data/raw/<name>/`, through the readers, in every mode; they learn the data source
from `dataset_source(raw_dir)`.

Real mode, per spec:
  * `downloads`: fetched into `data/cache/<name>/` (checksum-verified, resumable, atomic) unless the
    user already placed the file in `data/external/<name>/`; then `install_real` unpacks them.
  * `course_files`: have no public URL and must be in `data/external/<name>/`; all missing ones are
    reported in one message.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlsys.core.errors import MissingDataError, UserError
from dlsys.core.outputs import atomic_dir, write_json
from dlsys.core.params import Params

log = logging.getLogger(__name__)

RAW_ROOT = Path("data/raw")
EXTERNAL_ROOT = Path("data/external")
CACHE_ROOT = Path("data/cache")
SOURCES = ("synthetic", "real")


@dataclass(frozen=True)
class Download:
    """A published file: tried at each URL in turn, verified against its published checksum."""

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class CourseFile:
    """A course file with no public URL: `path` relative to data/external/<name>/ (alternatives allowed)."""

    path: str
    description: str
    alternatives: tuple[str, ...] = ()


@dataclass
class DatasetSpec:
    name: str
    # generate(out_dir, params, seed) -> summary dict; params is the `data.<name>` group.
    generate: Callable[[Path, Params, int], dict]
    # install_real(files, out_dir, params) -> summary dict; files maps a Download/CourseFile name to a path.
    install_real: Callable[[dict[str, Path], Path, Params], dict]
    downloads: list[Download] = field(default_factory=list)
    course_files: list[CourseFile] = field(default_factory=list)
    licence: str = ""
    # preview(raw_dir, plots_dir, source): a few samples (PNG grid, wav + spectrogram) a person can check.
    preview: Callable[[Path, Path, str], None] | None = None


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    _load_spec_module(name)
    if name not in _REGISTRY:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def all_specs() -> dict[str, DatasetSpec]:
    _load_builtin_specs()
    return dict(_REGISTRY)


# Where each dataset's spec lives; only the needed module is imported, so a stage's code deps stay exact.
SPEC_MODULES = {
    "mnist": "dlsys.data.mnist",
    "sevens": "dlsys.data.sevens",
    "cifar10": "dlsys.data.cifar10",
    "denoise": "dlsys.data.audio.sets",
    "timit_denoise": "dlsys.data.audio.sets",
    "speakers": "dlsys.data.audio.sets",
    "speech_commands": "dlsys.data.audio.sets",
    "har": "dlsys.data.har",
}


def _load_spec_module(name: str) -> None:
    import importlib

    module = SPEC_MODULES.get(name)
    if module is not None and name not in _REGISTRY:
        importlib.import_module(module)  # registers the spec


def _load_builtin_specs() -> None:
    for name in SPEC_MODULES:
        try:
            _load_spec_module(name)
        except ModuleNotFoundError:
            pass  # a dataset family not built yet


def raw_dir(name: str) -> Path:
    return RAW_ROOT / name


def require_raw_dir(path: str | Path) -> Path:
    """The dataset directory, or a clear error saying which stage produces it."""
    path = Path(path)
    if not path.is_dir():
        raise MissingDataError(f"{path}: dataset directory not found; run `dvc repro acquire_{path.name}` "
                               f"(or see README, 'Datasets')")
    return path


def dataset_source(path: str | Path) -> str:
    """The source ('synthetic' or 'real') recorded by the acquisition stage in `<path>/dataset.json`."""
    meta = Path(path) / "dataset.json"
    if not meta.exists():
        raise MissingDataError(f"{meta}: not found; run the acquisition stage first (dvc repro acquire_{Path(path).name})")
    return json.loads(meta.read_text())["source"]


def missing_course_files(spec: DatasetSpec, external: Path) -> list[CourseFile]:
    return [cf for cf in spec.course_files
            if not any((external / p).exists() for p in (cf.path, *cf.alternatives))]


def resolve_course_file(cf: CourseFile, external: Path) -> Path:
    for p in (cf.path, *cf.alternatives):
        if (external / p).exists():
            return external / p
    raise MissingDataError(f"{external / cf.path}: missing ({cf.description})")


def acquire(name: str, params: Params, seed: int, root: Path = Path(".")) -> dict:
    """Build data/raw/<name>/ from the configured source; returns the summary written to dataset.json."""
    spec = get_spec(name)
    group = params.sub(f"data.{name}")
    source = group.choice("source", SOURCES)
    out = root / RAW_ROOT / name
    external = root / EXTERNAL_ROOT / name
    t0 = time.perf_counter()
    if source == "real":
        files = _gather_real_files(spec, external, root / CACHE_ROOT / name)
    with atomic_dir(out) as tmp:
        if source == "synthetic":
            summary = spec.generate(tmp, group, seed)
        else:
            summary = spec.install_real(files, tmp, group)
        meta = {"name": name, "source": source, **summary, "seconds": round(time.perf_counter() - t0, 2)}
        write_json(tmp / "dataset.json", meta)
    log.info("%s: %s data written to %s in %.1f s", name, source, out, meta["seconds"])
    return meta


def _gather_real_files(spec: DatasetSpec, external: Path, cache: Path) -> dict[str, Path]:
    from dlsys.data.download import fetch

    missing = missing_course_files(spec, external)
    if missing:
        lines = "\n".join(f"  - {cf.path}: {cf.description}" for cf in missing)
        raise MissingDataError(
            f"data.{spec.name}.source is 'real' but {len(missing)} course file(s) are missing from {external}/ "
            f"(they have no public URL; copy them there from the course materials):\n{lines}")
    files = {cf.path: resolve_course_file(cf, external) for cf in spec.course_files}
    for dl in spec.downloads:
        files[dl.filename] = fetch(dl, external=external, cache=cache)
    return files
