"""`make compare REV=<rev>`: what changed in the workspace against a git revision, the way a pull
request shows it, as markdown + images that need no network.

DVC gives the differences (`dvc metrics diff --md`, `dvc params diff --md`, `dvc plots diff --json`);
its HTML would fetch Vega from a CDN, so every Vega plot is redrawn here with matplotlib from the data
DVC inlines into the spec (each row carries its `rev`), and image plots are shown side by side.

    python -m dlsys.reporting.compare --rev HEAD --out reports/compare
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from dlsys.core.errors import UserError
from dlsys.core.outputs import atomic_dir
from dlsys.plots import titled
from dlsys.reporting.charts import Chart, bar_chart, confusion_chart, render, xy_chart

log = logging.getLogger("dlsys.reporting.compare")

REPORT_NAME = "README.md"


def dvc_executable() -> str:
    """The dvc next to this interpreter (the project venv), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    if local.exists():
        return str(local)
    found = shutil.which("dvc")
    if not found:
        raise UserError("dvc not found: run `make install` (it installs dvc into .venv)")
    return found


def run_dvc(repo: Path, *args: str) -> str:
    proc = subprocess.run([dvc_executable(), *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise UserError(f"`dvc {' '.join(args)}` failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def check_rev(repo: Path, rev: str) -> str:
    """The full sha of `rev`, or a one-line error naming it."""
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"REV={rev!r} is not a commit of the git repository at {repo}")
    return proc.stdout.strip()


# ---------------------------------------------------------------- Vega spec → Chart

def _field(enc: Mapping | None, channel: str) -> dict | None:
    spec = (enc or {}).get(channel)
    return spec if isinstance(spec, dict) and spec.get("field") else None


def _xy_encoding(spec: Mapping) -> tuple[dict, dict] | None:
    """The first (x, y) pair without aggregation, merging each layer's encoding with its parents'."""
    stack = [(spec, {})]
    while stack:
        node, inherited = stack.pop(0)
        enc = {**inherited, **(node.get("encoding") or {})}
        x, y = _field(enc, "x"), _field(enc, "y")
        if x and y and "aggregate" not in x and "aggregate" not in y:
            return x, y
        children = list(node.get("layer") or [])
        if isinstance(node.get("spec"), dict):
            children.append(node["spec"])
        stack += [(c, enc) for c in children if isinstance(c, dict)]
    return None


def _mark(spec: Mapping) -> str:
    mark = spec.get("mark")
    return mark.get("type", "") if isinstance(mark, dict) else str(mark or "")


def _title(spec: Mapping, default: str) -> str:
    title = spec.get("title")
    if isinstance(title, dict):
        return str(title.get("text") or default)
    return str(title or default)


def chart_from_vega(name: str, spec: Mapping[str, Any]) -> Chart | None:
    """Redraw the DVC templates (linear/simple/smooth, scatter, bar_horizontal, confusion[_normalized])
    from their inlined data; None for a spec this does not understand."""
    rows = (spec.get("data") or {}).get("values")
    xy = _xy_encoding(spec)
    if not isinstance(rows, list) or not rows or xy is None:
        return None
    x, y = xy
    rows = sorted(rows, key=lambda r: r.get("rev") == "workspace")  # the base revision first
    title = _title(spec, name)
    top = spec.get("encoding") or {}
    kinds = (x.get("type"), y.get("type"))
    if "facet" in spec or kinds == ("nominal", "nominal"):
        panel = ((spec.get("facet") or {}).get("column") or {}).get("field", "rev")
        normalized = "percent_of_y" in json.dumps(spec.get("spec", {}))
        return confusion_chart(title, rows, x["field"], y["field"], panel_by=panel, normalized=normalized)
    if "nominal" in kinds:
        value, category = (x, y) if kinds[1] == "nominal" else (y, x)
        return bar_chart(title, rows, value["field"], category["field"], group_by=["rev"])
    group_by = ["rev"]
    for channel in ("strokeDash", "shape"):
        extra = _field(top, channel)
        if extra and extra["field"] != "rev" and extra["field"] in rows[0]:
            group_by.append(extra["field"])
    kind = "scatter" if _mark(spec) in ("point", "circle") else "line"
    return xy_chart(title, rows, x["field"], y["field"], group_by, kind=kind,
                    x_label=x.get("title") or x["field"], y_label=y.get("title") or y["field"])


# ---------------------------------------------------------------- data source per revision

class Sources:
    """`data_source` of the metrics file beside a plot (`plots/<fam>/<step>/…` → `metrics/<fam>/<step>.json`)
    in the base revision and in the workspace, so every redrawn plot's title says which data it shows."""

    def __init__(self, repo: Path, rev: str):
        self.repo, self.rev = repo, rev
        self._cache: dict[tuple[str, str], str | None] = {}

    def _read(self, where: str, path: str) -> str | None:
        key = (where, path)
        if key not in self._cache:
            if where == "workspace":
                file = self.repo / path
                text = file.read_text() if file.is_file() else None
            else:
                proc = subprocess.run(["git", "show", f"{self.rev}:{path}"], cwd=self.repo, capture_output=True,
                                      text=True)
                text = proc.stdout if proc.returncode == 0 else None
            try:
                value = json.loads(text).get("data_source") if text else None
            except (json.JSONDecodeError, AttributeError):
                value = None
            self._cache[key] = value if isinstance(value, str) else None
        return self._cache[key]

    def label(self, plot_name: str, revisions: list[str]) -> str | None:
        parts = Path(plot_name).parts
        if len(parts) < 3 or parts[0] != "plots":
            return None
        metrics = f"metrics/{parts[1]}/{parts[2]}.json"
        found = {r: self._read("workspace" if r == "workspace" else "rev", metrics) for r in revisions}
        known = {r: s for r, s in found.items() if s}
        if not known:
            return None
        if len(set(known.values())) == 1 and len(known) == len(found):
            return next(iter(known.values()))
        return ", ".join(f"{r}: {s or 'unknown'}" for r, s in found.items())


# ---------------------------------------------------------------- the report

def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "plot"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _section(title: str, body: str, empty: str) -> list[str]:
    return [f"## {title}", "", body.strip() if body.strip() else f"_{empty}_", ""]


def build_compare(repo: Path, rev: str, out: Path) -> Path:
    """Write `out/README.md` and its images; returns the markdown path."""
    repo = repo.resolve()
    sha = check_rev(repo, rev)
    metrics_md = run_dvc(repo, "metrics", "diff", rev, "--md")
    params_md = run_dvc(repo, "params", "diff", rev, "--md")
    with atomic_dir(out) as tmp:
        raw = run_dvc(repo, "plots", "diff", rev, "--json", "-o", str(tmp / "images"))
        plots = json.loads(raw) if raw.strip() else {}
        lines = [f"# Changes in the workspace against `{rev}`", "",
                 f"Base: `{rev}` = `{sha[:12]}`; compared with the workspace of `{repo.name}`. "
                 f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by "
                 f"`python -m dlsys.reporting.compare --rev {rev}`, rendered offline (matplotlib).", ""]
        lines += _section("Metrics (`dvc metrics diff`)", metrics_md, "No metric changed.")
        lines += _section("Params (`dvc params diff`)", params_md, "No param changed.")
        lines += _plots_section(plots, tmp, Sources(repo, rev))
        md = tmp / REPORT_NAME
        md.write_text("\n".join(lines) + "\n")
    log.info("comparison with %s written to %s", rev, out / REPORT_NAME)
    return out / REPORT_NAME


def _plots_section(plots: Mapping[str, Any], tmp: Path, sources: Sources) -> list[str]:
    data: dict[str, list] = plots.get("data") or {}
    errors: dict[str, list[str]] = {}
    for err in plots.get("errors") or []:
        errors.setdefault(err.get("name", "?"), []).append(
            f"{err.get('rev', '?')}: {err.get('type', 'error')} {err.get('msg', '')}".strip())
    lines = ["## Plots (`dvc plots diff`)", ""]
    n_drawn = 0
    for name, entries in data.items():
        if not entries and any(k.startswith(name.rstrip("/") + "/") for k in data):
            continue  # a plots directory: its files are listed on their own
        lines += [f"### {name}", ""]
        vega = [e for e in entries if e.get("type") == "vega"]
        images = [e for e in entries if e.get("type") == "image"]
        for i, entry in enumerate(vega):
            lines += _vega_block(name, entry, tmp, i, sources)
            n_drawn += 1
        if images:
            lines += _image_block(images, tmp)
            n_drawn += 1
        others = [e for e in entries if e.get("type") not in ("vega", "image")]
        for e in others:
            lines += [f"_Not rendered: plot type `{e.get('type')}` is not supported offline._", ""]
        if not entries:
            lines += ["_No data in any revision._", ""]
        for msg in errors.get(name, []):
            lines += [f"- could not load {_md_escape(msg)}"]
        if errors.get(name):
            lines.append("")
    if not n_drawn:
        lines += ["_No plots declared in dvc.yaml._", ""]
    return lines


def _vega_block(name: str, entry: Mapping, tmp: Path, i: int, sources: Sources) -> list[str]:
    spec = entry.get("content") or {}
    revs = ", ".join(f"`{r}`" for r in entry.get("revisions", []))
    chart = chart_from_vega(name, spec)
    source = sources.label(name, list(entry.get("revisions", [])))
    if chart is not None and source:
        chart.title = titled(chart.title, source)
    if chart is None:
        raw = tmp / "specs" / f"{_slug(name)}{'-' + str(i) if i else ''}.vl.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(spec, indent=1))
        return [f"_Not rendered offline: this template is not understood here; its Vega-Lite spec "
                f"(with data) is in [{raw.relative_to(tmp)}]({raw.relative_to(tmp)})._", ""]
    png = tmp / "plots" / f"{_slug(name)}{'-' + str(i) if i else ''}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    render(chart, png)
    rel = png.relative_to(tmp).as_posix()
    return [f"![{name}]({rel})", "", f"Revisions: {revs}.", ""]


def _image_block(images: list[Mapping], tmp: Path) -> list[str]:
    """One column per revision, images side by side."""
    cells = []
    for e in sorted(images, key=lambda e: "workspace" in e.get("revisions", [])):
        rev = ", ".join(e.get("revisions", [])) or "?"
        url = Path(e.get("url", ""))
        if url.is_absolute() and url.exists() and tmp in url.parents:
            rel = url.relative_to(tmp).as_posix()
        elif url.exists():
            dst = tmp / "images" / f"{_slug(rev)}_{_slug(url.name)}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(url, dst)
            rel = dst.relative_to(tmp).as_posix()
        else:
            cells.append((rev, "_image not found_"))
            continue
        cells.append((rev, f"![{rev}]({rel})"))
    header = "| " + " | ".join(f"`{_md_escape(r)}`" for r, _ in cells) + " |"
    sep = "|" + "---|" * len(cells)
    body = "| " + " | ".join(c for _, c in cells) + " |"
    return [header, sep, body, ""]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="git revision to compare the workspace with (default HEAD)")
    ap.add_argument("--out", default="reports/compare", type=Path, help="report directory (replaced)")
    ap.add_argument("--repo", default=".", type=Path, help="repository root (default: current directory)")
    args = ap.parse_args(argv)
    build_compare(args.repo, args.rev, args.out.resolve())


if __name__ == "__main__":
    from dlsys.core.stage import run_stage

    run_stage(lambda: main(), name="compare")
