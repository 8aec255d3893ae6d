"""`make exp-table`: `dvc exp show` that a person can read: only the params and metrics that differ
between the experiments shown, timings left out, one row per value and one column per experiment, as
markdown.

    python -m dlsys.reporting.exp_table [-n 3 | -A | --rev main]   (options go to `dvc exp show`)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from dlsys.reporting.compare import fmt, is_timing, run_dvc
from dlsys.reporting.pipeline import PipelineOrder

log = logging.getLogger("dlsys.reporting.exp_table")


def _entries(rows: list[Mapping]) -> Iterator[Mapping]:
    """The baselines (workspace, commits) and, after each, the experiments derived from it."""
    for row in rows or []:
        yield row
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                yield {**rev, "name": rev.get("name") or exp.get("name")}


def _flatten(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            sep = "" if not prefix or prefix.endswith(":") else "."
            yield from _flatten(value, f"{prefix}{sep}{key}")
    else:
        yield prefix, obj


def _values(entry: Mapping) -> dict[tuple[str, str], Any]:
    """{(kind, column): value} for params and metrics, timing keys left out."""
    data = entry.get("data") or {}
    out: dict[tuple[str, str], Any] = {}
    for kind in ("params", "metrics"):
        for file, content in (data.get(kind) or {}).items():
            label = "" if file == "params.yaml" else Path(file).with_suffix("").as_posix().removeprefix("metrics/") + ":"
            for key, value in _flatten((content or {}).get("data") or {}, label):
                if not is_timing(key.rpartition(":")[2]):
                    out[(kind, key)] = value
    return out


def _column_name(entry: Mapping) -> str:
    rev = str(entry.get("rev") or "")
    name = entry.get("name")
    if rev == "workspace":
        return "workspace"
    return f"{name} ({rev[:7]})" if name else rev[:7]


def exp_table(shown: list[Mapping], order: PipelineOrder | None = None) -> str:
    """Markdown: one row per param/metric whose value differs between the experiments, one column each."""
    entries = [e for e in _entries(shown) if e.get("data")]
    if len(entries) < 2:
        return ("_Only one revision to show: add experiments with `dvc exp run -S <param>=<value>` "
                "(or widen the range, e.g. `make exp-table EXP_ARGS=-A`)._\n")
    values = [_values(e) for e in entries]
    keys = list(dict.fromkeys(k for v in values for k in v))
    changed = [k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in values}) > 1]
    if order is not None:
        rank = {k: (k[0] != "params", order.rank(f"metrics/{k[1].partition(':')[0]}.json") if k[0] == "metrics"
                    else 0) for k in changed}
        changed.sort(key=lambda k: rank[k])  # params, then metrics in pipeline order (stable within a file)
    names = [_column_name(e) for e in entries]
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---:|" * len(names)]
    if not changed:
        lines.append("| _no param or metric differs_ |" + " |" * len(names))
    for kind, key in changed:
        cells = [fmt(v.get((kind, key))) if (kind, key) in v else "—" for v in values]
        lines.append(f"| {kind[:-1]} `{key}` | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    ap.add_argument("--repo", default=".", type=Path, help="repository root (default: current directory)")
    args, dvc_args = ap.parse_known_args(argv)
    shown = json.loads(run_dvc(args.repo, "exp", "show", "--json", *dvc_args) or "[]")
    sys.stdout.write(exp_table(shown, PipelineOrder.load(args.repo)))


if __name__ == "__main__":
    from dlsys.core.stage import run_stage

    run_stage(lambda: main(), name="exp-table")
