"""Turn an overlay params file (e.g. params-real.yaml) into `dvc exp run -S key=value` arguments.

    dvc exp run -n real-data $(python -m dlsys.core.overlay params-real.yaml)

params-real.yaml holds only the keys that differ from params.yaml for a real-data run (the course's
"seed" settings and `data.<name>.source: real`); nested keys become dotted `-S` arguments, so
params.yaml keeps its comments and the run is an ordinary DVC experiment.
"""

from __future__ import annotations

import copy
import json
import shlex
import sys
from pathlib import Path

from dlsys.core.params import read_yaml


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def apply_dotted(data: dict, updates: dict[str, object]) -> dict:
    """A copy of `data` with {"a.b.c": value} leaves written in; a key `data` lacks is refused (KeyError)."""
    out = copy.deepcopy(data)
    for key, value in updates.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"params has no key {key}")
            node = node[part]
        if not isinstance(node, dict) or last not in node:
            raise KeyError(f"params has no key {key}")
        node[last] = value
    return out


def set_args(overlay: dict) -> list[str]:
    args = []
    for key, value in flatten(overlay).items():
        # JSON is valid YAML: lists and strings survive the round trip through -S
        args += ["-S", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return args


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m dlsys.core.overlay params-real.yaml", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.exists():
        print(f"error: {path}: not found", file=sys.stderr)
        return 2
    overlay = read_yaml(path.read_text()) or {}
    print(" ".join(shlex.quote(a) for a in set_args(overlay)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
