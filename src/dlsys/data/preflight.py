"""Before a real-data run: is every input there? One message names every missing file and its route.

    python -m dlsys.data.preflight params-real.yaml [--download]

params.yaml with the overlay applied decides each dataset's source. For `real`, the course files and
the published archives (or a placed form of them: uncompressed, extracted) must be in
data/external/<name>/ (an archive already in data/cache/<name>/ counts too); for a builder source
(`librispeech`, `public`), the corpora it reads. With `--download`, archives that have a URL are left
to the acquisition stages to fetch. Only presence is checked here; the stages verify every byte.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dlsys.core.errors import UserError
from dlsys.core.params import Params, read_yaml
from dlsys.data.inputs import find_placed, format_missing
from dlsys.data.registry import CACHE_ROOT, EXTERNAL_ROOT, SOURCES, all_specs, missing_course_files


def merged(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for k, v in overlay.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def missing_inputs(params: Params, root: Path = Path("."), download: bool = False) -> list[tuple[str, str, str]]:
    """(dataset, missing file, route) for every dataset whose source is not synthetic."""
    items = []
    for name, spec in sorted(all_specs().items()):
        if not params.has(f"data.{name}.source"):
            continue
        group = params.sub(f"data.{name}")
        source = group.choice("source", SOURCES + tuple(spec.builders))
        external = root / EXTERNAL_ROOT / name
        if source in spec.builders:
            items += spec.builders[source].missing(root / EXTERNAL_ROOT, group, name)
            continue
        if source != "real":
            continue
        for cf in missing_course_files(spec, external):
            items.append((name, f"{external / cf.path}: {cf.description}",
                          "no public URL: copy it from the course materials (README, 'Real data')"))
        for dl in spec.downloads:
            if os.path.lexists(external / dl.filename) or (root / CACHE_ROOT / name / dl.filename).exists():
                continue
            try:
                if find_placed(dl.placed, external) is not None:
                    continue
            except UserError as exc:  # placed but wrong (checksum, incomplete folder): say so here too
                items.append((name, str(exc), f"replace it with the published file from {dl.urls[0]}"))
                continue
            if download and dl.urls:
                continue
            checksum = f"MD5 {dl.md5}" if dl.md5 else f"SHA-256 {dl.sha256}" if dl.sha256 else "no published checksum"
            forms = "".join(f"; or place {external / f.path if f.path else external}"
                            f"{'/' if f.folder else ''} ({f.description})" for f in dl.placed)
            items.append((name, f"{external / dl.filename}",
                          f"download {dl.urls[0]} ({checksum}) into {external}/{forms}; "
                          f"or allow downloads: make repro-real DOWNLOAD=1"))
    return items


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    download = "--download" in argv
    if len(args) != 1 or any(a not in ("--download",) for a in argv if a.startswith("--")):
        print("usage: python -m dlsys.data.preflight params-real.yaml [--download]", file=sys.stderr)
        return 2
    try:
        base = read_yaml(Path("params.yaml").read_text()) or {}
        overlay = read_yaml(Path(args[0]).read_text()) or {}
        items = missing_inputs(Params(merged(base, overlay)), download=download)
    except (OSError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if items:
        print(f"error: {format_missing(items)}", file=sys.stderr)
        return 1
    print("real-data inputs: everything in place")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
