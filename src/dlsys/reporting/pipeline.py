"""The pipeline's order, read from dvc.yaml, so reports list families and steps as the pipeline runs them
(data first, then each family's steps in stage order) rather than alphabetically.

A path's rank is the position of the first stage that declares it (or a folder above it) among its
outs, metrics or plots; `${...}` in a matrix/foreach stage matches any one path component.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

log = logging.getLogger("dlsys.reporting.pipeline")

UNRANKED = 10**6  # paths no stage declares sort after every declared one


def _paths(entries: Any) -> Iterable[str]:
    for item in entries or []:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from (str(k) for k in item)


def _pattern(path: str) -> re.Pattern:
    parts = re.split(r"(\$\{[^}]*\})", path.strip().rstrip("/"))
    body = "".join("[^/]+" if p.startswith("${") else re.escape(p) for p in parts)
    return re.compile(rf"{body}(/.*)?")


class PipelineOrder:
    def __init__(self, stages: list[tuple[str, list[re.Pattern]]]):
        self.stages = stages

    @classmethod
    def load(cls, root: Path) -> "PipelineOrder":
        file = Path(root) / "dvc.yaml"
        try:
            doc = yaml.safe_load(file.read_text()) if file.is_file() else None
        except (OSError, yaml.YAMLError) as exc:
            log.warning("%s: not read (%s); reports fall back to alphabetical order", file, exc)
            doc = None
        stages = []
        for name, stage in ((doc or {}).get("stages") or {}).items():
            if isinstance(stage, dict) and "foreach" in stage:
                stage = stage.get("do")
            if not isinstance(stage, dict):
                continue
            declared = [*_paths(stage.get("outs")), *_paths(stage.get("metrics")), *_paths(stage.get("plots"))]
            stages.append((str(name), [_pattern(p) for p in declared]))
        return cls(stages)

    def rank(self, path: str | Path) -> int:
        text = Path(path).as_posix()
        for i, (_, patterns) in enumerate(self.stages):
            if any(p.fullmatch(text) for p in patterns):
                return i
        return UNRANKED

    def sort(self, paths: Iterable[str]) -> list[str]:
        """Paths in pipeline order; ties (same stage, or none) alphabetically."""
        return sorted(paths, key=lambda p: (self.rank(p), p))
