"""The dataset registry: one `DatasetSpec` per dataset, real and synthetic sources behind one interface.

`acquire(name, params)` (stages/acquire.py) builds `data/raw/<name>/` atomically in the dataset's
native format and writes `data/raw/<name>/dataset.json` recording the source actually used. Downstream
stages read only `data/raw/<name>/`, through the readers, in every mode; they learn the data source
from `dataset_source(raw_dir)`.

Real mode, per spec:
  * `downloads`: fetched into `data/cache/<name>/` (checksum-verified, resumable, atomic) unless the
    user already placed the file in `data/external/<name>/`; then `install_real` unpacks them. A
    download without a published checksum is pinned on first use in `data/download-pins.json`.
  * `course_files`: have no public URL and must be in `data/external/<name>/`; all missing ones are
    reported in one message. Links and special files there are refused, never followed.

Nothing is renamed into place before it is valid: the dataset is built, `dataset.json` written, every
file read back by the dataset's own reader (`validate`) and the preview drawn, all in temporary
directories; only then are `data/raw/<name>/`, `plots/data/<name>/` and `audio/data/<name>/` swapped
in. Temporary directories left by a killed run are removed at the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dlsys.core.errors import DataFormatError, DownloadError, MissingDataError, UserError
from dlsys.core.outputs import AUDIO_ROOT, METRICS_ROOT, PLOTS_ROOT, TIMINGS_ROOT, atomic_dir, write_json
from dlsys.core.params import Params
from dlsys.data.inputs import Builder, Placed, find_placed

log = logging.getLogger(__name__)

RAW_ROOT = Path("data/raw")
EXTERNAL_ROOT = Path("data/external")
CACHE_ROOT = Path("data/cache")
# Trust on first use: the SHA-256 of a download with no published checksum, recorded the first time it
# passed validation (commit this file); a later download with another hash is refused.
PINS_FILE = Path("data/download-pins.json")
SOURCES = ("synthetic", "real")
# Used when params.yaml has no data.limits group (library use, tests).
DEFAULT_MAX_DOWNLOAD_MB = 4096.0


@dataclass(frozen=True)
class Download:
    """A published file: tried at each URL in turn, verified against its published checksum."""

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    # Other forms a user may place in data/external/<name>/ instead (uncompressed, extracted folder).
    placed: tuple[Placed, ...] = ()


@dataclass(frozen=True)
class CourseFile:
    """A course file with no public URL: `path` relative to data/external/<name>/ (alternatives allowed)."""

    path: str
    description: str
    alternatives: tuple[str, ...] = ()
    optional: bool = False  # installed when present; its absence is not an error
    folder: bool = False    # a folder of files (copied whole) rather than one file


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
    # validate(raw_dir) -> the dataset as read: every file through the project's readers (DataFormatError if
    # any is wrong); the preview draws from what it returns.
    validate: Callable[[Path], Any] | None = None
    # The key of the dataset's preview in dlsys.tasks.datasets.PREVIEWS (drawing lives above data/).
    preview: str | None = None
    audio: bool = False     # the preview writes listening examples (audio/data/<name>/)
    pickled: bool = False   # read through the restricted unpickler: dataset.json records the array cap
    # Further sources (`data.<name>.source: <key>`) that build the course format from public corpora.
    builders: dict[str, Builder] = field(default_factory=dict)


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
    "timit_denoise": "dlsys.data.audio.public_timit",  # imports sets (the spec), adds the `public` builder
    "speakers": "dlsys.data.audio.librispeech",         # imports sets (the spec), adds the `librispeech` builder
    "speech_commands": "dlsys.data.audio.sets",
    "har": "dlsys.data.har",
}


def _load_spec_module(name: str) -> None:
    import importlib

    module = SPEC_MODULES.get(name)
    if module is not None:
        importlib.import_module(module)  # registers the spec (a no-op once imported)


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


def read_dataset_meta(path: str | Path, required: bool = True) -> dict:
    """`<path>/dataset.json` as written by the acquisition stage ({} if absent and not required)."""
    meta = Path(path) / "dataset.json"
    if not meta.exists():
        if not required:
            return {}
        raise MissingDataError(f"{meta}: not found; run the acquisition stage first "
                               f"(dvc repro acquire_{Path(path).name})")
    try:
        data = json.loads(meta.read_text())
    except (ValueError, OSError) as exc:
        raise DataFormatError(f"{meta}: unreadable ({type(exc).__name__}: {exc}); re-create it with "
                              f"`dvc repro -f acquire_{Path(path).name}`") from None
    if not isinstance(data, dict) or data.get("source") not in SOURCES:
        raise DataFormatError(f"{meta}: no valid 'source' (truncated or edited?); re-create it with "
                              f"`dvc repro -f acquire_{Path(path).name}`")
    return data


def dataset_source(path: str | Path) -> str:
    """The source ('synthetic' or 'real') recorded by the acquisition stage in `<path>/dataset.json`."""
    return read_dataset_meta(path)["source"]


def max_array_mb(path: str | Path) -> float | None:
    """The pickle array cap the dataset was acquired under (None: not recorded, use the current one)."""
    value = read_dataset_meta(path, required=False).get("max_array_mb")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _present(cf: CourseFile, external: Path) -> bool:
    # lexists: a dangling link is present (and then refused as a link), not reported as missing
    return any(os.path.lexists(external / p) for p in (cf.path, *cf.alternatives))


def missing_course_files(spec: DatasetSpec, external: Path) -> list[CourseFile]:
    """Required course files absent from `external` (optional ones are never missing)."""
    return [cf for cf in spec.course_files if not cf.optional and not _present(cf, external)]


def resolve_course_file(cf: CourseFile, external: Path) -> Path:
    for p in (cf.path, *cf.alternatives):
        if os.path.lexists(external / p):
            path = external / p
            check_placed(path, external, folder=cf.folder, what=cf.description)
            return path
    raise MissingDataError(f"{external / cf.path}: missing ({cf.description})")


def check_placed(path: Path, external: Path, folder: bool = False, what: str = "") -> None:
    """A file (or folder) the user placed under `external`: no link on the way, nothing but regular files.

    Links are refused rather than followed: a link can point anywhere (a system folder, a loop), and
    what it points at would be copied into data/raw and the DVC cache.
    """
    path, external = Path(path), Path(external)
    hint = f"copy the {'folder' if folder else 'file'} itself into {external}/ (links are not followed)"
    parts = path.relative_to(external).parts
    for node in [external, *(external.joinpath(*parts[:i]) for i in range(1, len(parts)))]:
        if node.is_symlink():
            raise DataFormatError(f"{node}: is a symbolic link; {hint}")
    _check_entry(path, hint)
    if folder:
        if not path.is_dir():
            raise DataFormatError(f"{path}: is a file, expected a folder{f' ({what})' if what else ''}")
        for entry in sorted(_walk(path)):
            _check_entry(entry, hint)
    elif path.is_dir():
        raise DataFormatError(f"{path}: is a folder, expected a file{f' ({what})' if what else ''}")


def _walk(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def _check_entry(path: Path, hint: str) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        raise DataFormatError(f"{path}: is a symbolic link; {hint}")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataFormatError(f"{path}: not a regular file (a {_kind(mode)}); {hint}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def copy_tree(src: Path, dst: Path) -> int:
    """Copy a checked folder (see `check_placed`) without following links; returns the number of files."""
    n = 0
    dst.mkdir(parents=True, exist_ok=False)
    with os.scandir(src) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_symlink():
                raise DataFormatError(f"{entry.path}: is a symbolic link; links are not followed")
            if entry.is_dir(follow_symlinks=False):
                n += copy_tree(Path(entry.path), dst / entry.name)
            elif entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, dst / entry.name, follow_symlinks=False)
                n += 1
            else:
                raise DataFormatError(f"{entry.path}: not a regular file")
    return n


def remove_stale(name: str, root: Path = Path(".")) -> list[Path]:
    """Remove what a killed run of `acquire(name)` left: `.<name>.*.tmp*` and `.<name>.old-*` entries.

    Runs of the same dataset never overlap (DVC locks the repository), so anything of that shape at the
    start of a run is debris, not another run's work in progress.
    """
    removed = []
    for parent in (RAW_ROOT, PLOTS_ROOT / "data", AUDIO_ROOT / "data", METRICS_ROOT / "data", TIMINGS_ROOT / "data"):
        folder = Path(root) / parent
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            tail = entry.name[len(name) + 2:]
            if not entry.name.startswith(f".{name}.") or not (".tmp" in tail or tail.startswith("old-")):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        log.warning("%s: removed %d temporary item(s) left by an interrupted run: %s", name, len(removed),
                    ", ".join(str(r) for r in removed))
    return removed


def limits(params: Params) -> tuple[float, float]:
    """(max_array_mb, max_download_mb) from params.yaml's `data.limits` (defaults when the group is absent)."""
    from dlsys.data.safe_pickle import DEFAULT_MAX_ARRAY_MB

    if not params.has("data.limits"):
        return DEFAULT_MAX_ARRAY_MB, DEFAULT_MAX_DOWNLOAD_MB
    p = params.sub("data.limits")
    return p.float("max_array_mb", gt=0), p.float("max_download_mb", gt=0)


# preview(data, plots_dir, audio_dir, source): `data` is what `validate` returned (the dataset as read).
Preview = Callable[[Any, Path, "Path | None", str], None]


def acquire(name: str, params: Params, seed: int, root: Path = Path("."), preview: Preview | None = None,
            timings: dict | None = None) -> dict:
    """Build data/raw/<name>/ from the configured source; returns the summary written to dataset.json.

    With `preview(data, plots_dir, audio_dir, source)`, plots/data/<name>/ (and audio/data/<name>/ for
    audio sets) are drawn from the validated data before anything is renamed into place. `timings`, when
    given, receives the wall times (they are not part of dataset.json, which depends only on the data).
    """
    from dlsys.data.safe_pickle import array_limit

    root = Path(root)
    remove_stale(name, root)
    spec = get_spec(name)
    group = params.sub(f"data.{name}")
    source = group.choice("source", SOURCES + tuple(spec.builders))
    builder = spec.builders.get(source)
    if builder is not None:
        builder.require(root / EXTERNAL_ROOT, group, name)  # every missing input in one message
    array_mb, download_mb = limits(params)
    clock = _Clock()
    with array_limit(array_mb):
        fetched: list[_Fetched] = []
        files: dict[str, Path] = {}
        if source == "real":
            files, fetched = _gather_real_files(spec, root / EXTERNAL_ROOT / name, root / CACHE_ROOT / name,
                                                root / PINS_FILE, int(download_mb * 2**20))
            clock.lap("fetch_seconds")
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_dir(root / RAW_ROOT / name))
            plots = audio = None
            if preview is not None:
                plots = stack.enter_context(atomic_dir(root / PLOTS_ROOT / "data" / name))
                if spec.audio:
                    audio = stack.enter_context(atomic_dir(root / AUDIO_ROOT / "data" / name))
            try:
                if builder is not None:
                    summary = builder.build(root / EXTERNAL_ROOT, tmp, group, seed)
                else:
                    summary = spec.generate(tmp, group, seed) if source == "synthetic" else \
                        spec.install_real(files, tmp, group)
                clock.lap("build_seconds")
                # built from public corpora: real data in the course format (`builder` says which)
                meta = {"name": name, "source": "real" if builder is not None else source, **summary}
                if spec.pickled:
                    meta["max_array_mb"] = array_mb
                write_json(tmp / "dataset.json", meta)
                data = spec.validate(tmp) if spec.validate is not None else None
                clock.lap("validate_seconds")
            except DataFormatError as exc:
                # name the files where they will be, not where they were built
                message = str(exc).replace(str(tmp), str(root / RAW_ROOT / name))
                raise DataFormatError(f"{message}{_forget_unpinned(fetched)}") from None
            if preview is not None:
                preview(data, plots, audio, meta["source"])
                clock.lap("preview_seconds")
    _record_pins(fetched, root / PINS_FILE)
    if timings is not None:
        timings.update(clock.laps)
    log.info("%s: %s data written to %s in %.1f s", name, source, root / RAW_ROOT / name, clock.total())
    return meta


class _Clock:
    def __init__(self):
        self.t0 = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, key: str) -> None:
        now = time.perf_counter()
        self.laps[key] = round(now - self.last, 2)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.t0


@dataclass
class _Fetched:
    key: str                 # "<dataset>/<filename>" in the pins file
    path: Path
    sha256: str              # of the file used
    pinned: bool             # verified against a published checksum or an existing pin
    cached: bool             # lives in the download cache (ours to delete), not in data/external/


def _gather_real_files(spec: DatasetSpec, external: Path, cache: Path, pins_file: Path,
                       max_bytes: int) -> tuple[dict[str, Path], list[_Fetched]]:
    from dlsys.data.download import fetch, file_digest

    missing = missing_course_files(spec, external)
    if missing:
        lines = "\n".join(f"  - {cf.path}: {cf.description}" for cf in missing)
        raise MissingDataError(
            f"data.{spec.name}.source is 'real' but {len(missing)} course file(s) are missing from {external}/ "
            f"(they have no public URL; copy them there from the course materials):\n{lines}")
    files = {cf.path: resolve_course_file(cf, external) for cf in spec.course_files if _present(cf, external)}
    pins = read_pins(pins_file)
    fetched = []
    for dl in spec.downloads:
        key = f"{spec.name}/{dl.filename}"
        published = bool(dl.md5 or dl.sha256)
        pin = None if published else pins.get(key)
        if not os.path.lexists(external / dl.filename):
            form = find_placed(dl.placed, external)  # another form of it the user placed, verified
            if form is not None:
                files[dl.filename] = form[1]
                continue
        path = fetch(dl, external=external, cache=cache, max_bytes=max_bytes, pinned_sha256=pin)
        files[dl.filename] = path
        if not published:
            fetched.append(_Fetched(key, path, pin or file_digest(path, "sha256"), pin is not None,
                                    cached=Path(cache) in path.parents))
    return files, fetched


def read_pins(pins_file: Path) -> dict[str, str]:
    """{"<dataset>/<filename>": sha256} recorded on first use (see PINS_FILE)."""
    if not Path(pins_file).exists():
        return {}
    try:
        data = json.loads(Path(pins_file).read_text())
    except (ValueError, OSError) as exc:
        raise UserError(f"{pins_file}: unreadable ({exc}); restore it from git") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) and len(v) == 64 for v in data.values()):
        raise UserError(f"{pins_file}: expected {{\"<dataset>/<file>\": \"<sha256>\"}}; restore it from git")
    return data


def _record_pins(fetched: list[_Fetched], pins_file: Path) -> None:
    new = {f.key: f.sha256 for f in fetched if not f.pinned}
    if not new:
        return
    pins = {**read_pins(pins_file), **new}
    write_json(pins_file, dict(sorted(pins.items())))
    for key, sha in new.items():
        log.warning("%s: no published checksum; pinned its SHA-256 %s in %s on first use (commit that file: "
                    "a later download with another hash is refused)", key, sha, pins_file)


def _forget_unpinned(fetched: list[_Fetched]) -> str:
    """A first download that fails validation is deleted from the cache, so the next run fetches it anew."""
    gone = [f.path for f in fetched if f.cached and not f.pinned and f.path.exists()]
    for path in gone:
        path.unlink()
    return f" (deleted the cached download {', '.join(map(str, gone))}; the next run fetches it again)" if gone else ""
