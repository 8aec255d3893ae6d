"""What a user may place in data/external/: alternative forms of a published file, corpus builders' inputs.

A published archive is one way to get a dataset; users often hold another form of the same thing
(MNIST's uncompressed IDX files, an extracted `cifar-10-batches-py/`, an unpacked Speech Commands
folder). A `Placed` form names such an alternative; `find_placed` returns the one the user has, after
checking its published checksum (files) or that its required members exist (folders). A `Builder` is
a dataset source that makes the course format from public corpora placed under data/external/.

Every check here only reads; the installers copy regular files only (`copy_regular_tree`), never
following a link out of data/external/.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlsys.core.errors import DataFormatError, DownloadError


@dataclass(frozen=True)
class Placed:
    """Another form of a published file a user may place in data/external/<name>/ instead of it.

    `path` is relative to data/external/<name>/ ("" = that folder itself). A file form is verified
    against `md5` (its own published checksum); a folder form counts as placed when any of `members`
    exists in it, and must then hold all of them.
    """

    path: str
    description: str
    md5: str | None = None
    folder: bool = False
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Need:
    """One input a builder reads, with the route to get it (shown when it is missing)."""

    path: str          # relative to data/external/
    description: str
    route: str


@dataclass
class Builder:
    """A dataset source that builds the course format from public corpora under data/external/.

    `needs(external_root, params)` lists what is missing (empty when everything is there);
    `build(external_root, out_dir, params, seed)` writes the dataset and returns its dataset.json summary.
    """

    corpus: str
    licence: str
    needs: Callable[[Path, object], list[Need]]
    build: Callable[[Path, Path, object, int], dict]
    extra: dict = field(default_factory=dict)

    def missing(self, external_root: Path, params, dataset: str) -> list[tuple[str, str, str]]:
        return [(dataset, f"{Path(external_root) / n.path}: {n.description}", n.route)
                for n in self.needs(Path(external_root), params)]

    def require(self, external_root: Path, params, dataset: str) -> None:
        """Raise one MissingDataError naming every missing input and its route."""
        from dlsys.core.errors import MissingDataError

        items = self.missing(external_root, params, dataset)
        if items:
            raise MissingDataError(format_missing(items))


def _is_link(path: Path) -> bool:
    return path.is_symlink()


def find_placed(forms: tuple[Placed, ...], external: Path) -> tuple[Placed, Path] | None:
    """The first alternative form present in `external`, verified; None when none is there."""
    from dlsys.data.download import verify

    for form in forms:
        path = external / form.path if form.path else external
        if form.folder:
            if not path.is_dir() or not any((path / m).exists() for m in form.members):
                continue
            absent = [m for m in form.members if not (path / m).exists()]
            if absent:
                raise DataFormatError(f"{path}/: incomplete {form.description}; missing {', '.join(absent)}")
            return form, path
        if not path.exists() and not _is_link(path):
            continue
        if _is_link(path) or not path.is_file():
            raise DataFormatError(f"{path}: not a regular file (links and folders are refused)")
        try:
            verify(path, md5=form.md5)
        except DownloadError as exc:
            raise DownloadError(f"{exc}; the file you placed is not the published {form.description}") from None
        return form, path
    return None


def copy_regular_tree(src: Path, dst: Path, skip: Callable[[Path], bool] = lambda p: False) -> int:
    """Copy the regular files under `src` into `dst` (same relative paths); returns how many.

    A link (to a file or a folder) anywhere inside is refused with one line: following it could copy
    files from outside data/external/ into the dataset and the DVC cache.
    """
    n = 0
    for root, dirs, files in os.walk(src, followlinks=False):
        root_p = Path(root)
        for name in sorted(dirs + files):
            p = root_p / name
            if p.is_symlink():
                raise DataFormatError(f"{p}: is a link; place the real files in {src}/ (links are refused)")
        for name in sorted(files):
            p = root_p / name
            if skip(p):
                continue
            if not p.is_file():
                raise DataFormatError(f"{p}: not a regular file")
            target = dst / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
            n += 1
    return n


def format_missing(items: list[tuple[str, str, str]]) -> str:
    """One message naming every missing file: items are (dataset, what, route)."""
    lines = [f"  - [{ds}] {what}\n      route: {route}" for ds, what, route in items]
    return f"{len(items)} real-data input(s) missing:\n" + "\n".join(lines)
