"""`make compare A=<rev> B=<rev>`: what changed between two revisions (either may be `workspace`),
the way a pull request shows it: a one-screen summary, then only what changed.

- Metrics: only values that moved beyond a tolerance, |B - A| > atol + rtol·|A| (numbers, element-wise
  for lists; anything else by equality). Timings are not results: keys named like seconds, times,
  samples_per_s... are left out (the pipeline writes its timings to the undeclared `timings/`).
- Params: every changed value.
- Plots: only those whose data changed (the rows DVC reads from a CSV/JSON, or an image's bytes).
  Each Vega plot is redrawn with matplotlib from the data DVC inlines into its spec, so the report
  needs no network; image plots are shown side by side.

The summary is printed and opens `reports/compare/README.md`; the details follow it there.

    python -m dlsys.reporting.compare --a HEAD~1 --b workspace --out reports/compare
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from dlsys.core.errors import UserError
from dlsys.core.outputs import atomic_dir
from dlsys.plots import titled
from dlsys.reporting.charts import Chart, bar_chart, confusion_chart, render, xy_chart
from dlsys.reporting.pipeline import PipelineOrder

log = logging.getLogger("dlsys.reporting.compare")

REPORT_NAME = "README.md"
WORKSPACE = "workspace"
RTOL = 1e-3   # a metric moved when |B - A| > ATOL + RTOL·|A|: 0.1 % relative ...
ATOL = 1e-6   # ... or, near zero, more than this
TOP_N = 10    # metric changes listed in the summary (largest relative change first)
LIST_SHOWN = 6  # list values show this many elements

# Words that make a key a timing, not a result (whole words of a snake_case key).
TIMING_WORDS = {"seconds", "second", "secs", "sec", "time", "times", "duration", "elapsed", "timing", "timings",
                "wall", "ms", "throughput"}
TIMING_PATTERNS = (re.compile(r"(^|_)per_(s|sec|second)$"),)


def is_timing(key: str) -> bool:
    """`train_seconds`, `epoch_time_ratio`, `samples_per_s`, `timings.fit`... but not `utterances_per_speaker`."""
    for part in key.lower().split("."):
        words = set(part.split("_"))
        if words & TIMING_WORDS or any(p.search(part) for p in TIMING_PATTERNS):
            return True
    return False


# ---------------------------------------------------------------- revisions and DVC

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
    """The full sha of `rev` (or `workspace`), else a one-line error naming it."""
    if rev == WORKSPACE:
        return WORKSPACE
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"{rev!r} is not a commit of the git repository at {repo} (nor `workspace`)")
    return proc.stdout.strip()


def _by_rev(result: Mapping[str, Any], rev: str) -> Mapping[str, Any]:
    """DVC keys a result by the names it was given, joined with commas when two name one commit."""
    for key, value in result.items():
        if rev in key.split(","):
            return value
    return {}


def _read_whole(repo: Path, rev: str, files: dict[str, Any]) -> None:
    """DVC keeps only a metrics file's scalars; read the files themselves so lists (per-class numbers,
    sweeps) are compared too. A file that does not parse keeps DVC's reading."""
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(repo), rev=None if rev == WORKSPACE else rev)
    for path in files:
        try:
            text = fs.read_text(path)
            data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.debug("%s at %s: kept DVC's reading (%s)", path, rev, exc)
            continue
        if isinstance(data, Mapping):
            files[path] = data


def load_revisions(repo: Path, a: str, b: str) -> tuple[dict, dict, dict]:
    """(metrics, params, errors): {rev: {file: data}} for both revisions: the declared metrics and
    params files, as DVC finds them (from git or the DVC cache)."""
    from dvc.repo import Repo  # heavy: only when comparing

    metrics, params, errors = {}, {}, {}
    with Repo(str(repo)) as dvc_repo:
        shown_m = dvc_repo.metrics.show(revs=[a, b], hide_workspace=False)
        shown_p = dvc_repo.params.show(revs=[a, b], hide_workspace=False)
    for rev in (a, b):
        for kind, shown, out in (("metrics", shown_m, metrics), ("params", shown_p, params)):
            res = _by_rev(shown, rev)
            if res.get("error"):
                errors.setdefault(rev, []).append(f"{kind}: {res['error']}")
            files = {}
            for path, entry in (res.get("data") or {}).items():
                if entry.get("error"):
                    errors.setdefault(rev, []).append(f"{path}: {entry['error']}")
                elif isinstance(entry.get("data"), Mapping):
                    files[path] = entry["data"]
            if kind == "metrics":
                _read_whole(repo, rev, files)
            out[rev] = files
    return metrics, params, errors


# ---------------------------------------------------------------- metrics and params

def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys; a list of objects (a sweep) is indexed: `sweep.0.acc`. Lists of values stay lists."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, v in enumerate(value):
                out.update(flatten(v, f"{name}.{i}."))
        else:
            out[name] = value
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def moved(old: Any, new: Any, rtol: float, atol: float) -> bool:
    """Whether a value changed beyond the tolerance (numbers and lists of numbers), or at all (the rest)."""
    if _number(old) and _number(new):
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) != math.isnan(new)
        return abs(new - old) > atol + rtol * abs(old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) != len(new) or any(moved(o, n, rtol, atol) for o, n in zip(old, new))
    return old != new


@dataclass
class Change:
    file: str
    key: str
    old: Any
    new: Any
    status: str  # changed | added | removed

    @property
    def delta(self) -> float | None:
        if self.status == "changed" and _number(self.old) and _number(self.new):
            return self.new - self.old
        return None

    @property
    def relative(self) -> float:
        """|Δ| / |A| (inf from zero, and for added/removed/non-numeric values: they sort first)."""
        d = self.delta
        if d is None:
            return math.inf
        return abs(d) / abs(self.old) if self.old else (math.inf if d else 0.0)


@dataclass
class MetricsDiff:
    changes: list[Change] = field(default_factory=list)
    within: int = 0          # values that moved, but by no more than the tolerance
    unchanged: int = 0
    timings: int = 0         # timing keys left out


def diff_metrics(a: Mapping[str, Mapping], b: Mapping[str, Mapping], rtol: float, atol: float,
                 order: PipelineOrder) -> MetricsDiff:
    out = MetricsDiff()
    for file in order.sort(set(a) | set(b)):
        fa, fb = flatten(a.get(file, {})), flatten(b.get(file, {}))
        for key in list(fa) + [k for k in fb if k not in fa]:
            if is_timing(key):
                out.timings += 1
                continue
            if key not in fb:
                out.changes.append(Change(file, key, fa[key], None, "removed"))
            elif key not in fa:
                out.changes.append(Change(file, key, None, fb[key], "added"))
            elif moved(fa[key], fb[key], rtol, atol):
                out.changes.append(Change(file, key, fa[key], fb[key], "changed"))
            elif fa[key] != fb[key]:
                out.within += 1
            else:
                out.unchanged += 1
    return out


def diff_params(a: Mapping[str, Mapping], b: Mapping[str, Mapping]) -> list[Change]:
    changes = []
    for file in sorted(set(a) | set(b)):
        fa, fb = flatten(a.get(file, {})), flatten(b.get(file, {}))
        for key in list(fa) + [k for k in fb if k not in fa]:
            if key not in fb:
                changes.append(Change(file, key, fa[key], None, "removed"))
            elif key not in fa:
                changes.append(Change(file, key, None, fb[key], "added"))
            elif fa[key] != fb[key]:
                changes.append(Change(file, key, fa[key], fb[key], "changed"))
    return changes


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > LIST_SHOWN:
            return "[" + ", ".join(fmt(v) for v in value[:LIST_SHOWN]) + f", …] ({len(value)} values)"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def _delta_cells(c: Change) -> tuple[str, str]:
    d = c.delta
    if d is None:
        return (c.status if c.status != "changed" else "changed"), ""
    rel = "" if not c.old else f"{100 * d / abs(c.old):+.2f} %"
    return f"{d:+.4g}", rel


# ---------------------------------------------------------------- plots

@dataclass
class PlotDiff:
    name: str
    status: str                       # changed | added | removed | same | not loaded
    entries: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _rows_by_rev(entry: Mapping) -> dict[str, list[str]]:
    """A Vega entry's data per revision, canonical: rows without `rev` and timing columns, sorted."""
    out: dict[str, list[str]] = {r: [] for r in entry.get("revisions", [])}
    for row in ((entry.get("content") or {}).get("data") or {}).get("values") or []:
        clean = {k: v for k, v in row.items() if k != "rev" and not is_timing(k)}
        out.setdefault(str(row.get("rev")), []).append(json.dumps(clean, sort_keys=True))
    return {r: sorted(rows) for r, rows in out.items()}


def _digest(url: str) -> str | None:
    path = Path(url)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def plot_status(entries: list[Mapping], a: str, b: str) -> str:
    """Whether a plot's data differs between revisions a and b."""
    seen: dict[str, list] = {a: [], b: []}
    for e in entries:
        if e.get("type") == "vega":
            for rev, rows in _rows_by_rev(e).items():
                if rows:
                    seen.setdefault(rev, []).append(rows)
        elif e.get("type") == "image":
            for rev in e.get("revisions", []):
                seen.setdefault(rev, []).append(_digest(e.get("url", "")))
    if not seen[a] and not seen[b]:
        return "same"
    if not seen[a]:
        return "added"
    if not seen[b]:
        return "removed"
    return "same" if seen[a] == seen[b] else "changed"


def diff_plots(plots: Mapping[str, Any], a: str, b: str, order: PipelineOrder) -> list[PlotDiff]:
    data: dict[str, list] = plots.get("data") or {}
    errors: dict[str, list[str]] = {}
    for err in plots.get("errors") or []:
        msg = str(err.get("msg", "")).splitlines()[-1:] or [""]
        errors.setdefault(err.get("name", "?"), []).append(f"{err.get('rev', '?')}: {msg[0]}".strip())
    out = []
    for name, entries in data.items():
        if not entries and any(k.startswith(name.rstrip("/") + "/") for k in data):
            continue  # a plots directory: its files are listed on their own
        if not entries:
            out.append(PlotDiff(name, "not loaded", [], sorted(set(errors.get(name, [])))))
            continue
        out.append(PlotDiff(name, plot_status(entries, a, b), entries, sorted(set(errors.get(name, [])))))

    def rank(p: PlotDiff) -> tuple[int, str]:
        files = {r.get("filename") for e in p.entries for r in ((e.get("content") or {}).get("data") or {})
                 .get("values", []) if isinstance(r, dict) and r.get("filename")}
        return min([order.rank(p.name)] + [order.rank(f"plots/{f}") for f in files]), p.name

    return sorted(out, key=rank)


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


def chart_from_vega(name: str, spec: Mapping[str, Any], base: str | None = None) -> Chart | None:
    """Redraw the DVC templates (linear/simple/smooth, scatter, bar_horizontal, confusion[_normalized])
    from their inlined data; None for a spec this does not understand. `base`'s rows are drawn first."""
    rows = (spec.get("data") or {}).get("values")
    xy = _xy_encoding(spec)
    if not isinstance(rows, list) or not rows or xy is None:
        return None
    x, y = xy
    if base is not None:
        rows = sorted(rows, key=lambda r: r.get("rev") != base)
    else:
        rows = sorted(rows, key=lambda r: r.get("rev") == WORKSPACE)  # the committed revision first
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
    in each revision, so every redrawn plot's title says which data it shows."""

    def __init__(self, metrics: Mapping[str, Mapping[str, Mapping]]):
        self.metrics = metrics  # {rev: {file: data}}

    def label(self, plot_name: str, revisions: list[str]) -> str | None:
        parts = Path(plot_name).parts
        if len(parts) < 3 or parts[0] != "plots":
            return None
        file = f"metrics/{parts[1]}/{parts[2]}.json"
        found = {}
        for r in revisions:
            value = (self.metrics.get(r, {}).get(file) or {}).get("data_source")
            found[r] = value if isinstance(value, str) else None
        known = {r: s for r, s in found.items() if s}
        if not known:
            return None
        if len(set(known.values())) == 1 and len(known) == len(found):
            return next(iter(known.values()))
        return ", ".join(f"{r}: {s or 'unknown'}" for r, s in found.items())


# ---------------------------------------------------------------- the report

def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "plot"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _rev_label(rev: str, sha: str) -> str:
    return "`workspace`" if rev == WORKSPACE else f"`{rev}` (`{sha[:10]}`)"


@dataclass
class Comparison:
    a: str
    b: str
    sha_a: str
    sha_b: str
    rtol: float
    atol: float
    metrics: MetricsDiff
    params: list[Change]
    plots: list[PlotDiff]
    errors: dict[str, list[str]]
    raw_metrics: dict[str, dict] = field(default_factory=dict)  # {rev: {file: data}}

    def summary(self) -> list[str]:
        """The one screen a person reads first (markdown that reads as plain text too)."""
        m = self.metrics
        changed_plots = [p for p in self.plots if p.status in ("changed", "added", "removed")]
        n_plots = sum(p.status != "not loaded" for p in self.plots)
        n_files = len({c.file for c in m.changes})
        lines = [f"# Compare {self.a} → {self.b}", "",
                 f"A = {_rev_label(self.a, self.sha_a)}, B = {_rev_label(self.b, self.sha_b)}.", "",
                 f"- **Metrics**: {len(m.changes)} changed beyond tolerance"
                 f"{f' in {n_files} files' if m.changes else ''} (|B−A| > {self.atol:g} + {self.rtol:g}·|A|); "
                 f"{m.within} moved within it, {m.unchanged} unchanged, {m.timings} timing fields ignored.",
                 f"- **Params**: {len(self.params)} changed"
                 + (": " + ", ".join(f"`{c.key}` {fmt(c.old)} → {fmt(c.new)}" for c in self.params[:6])
                    + (", …" if len(self.params) > 6 else "") if self.params else "."),
                 f"- **Plots**: {len(changed_plots)} of {n_plots} with changed data"
                 + (": " + ", ".join(f"`{p.name}`" + ("" if p.status == "changed" else f" ({p.status})")
                                     for p in changed_plots[:8]) + (", …" if len(changed_plots) > 8 else "")
                    if changed_plots else ".")]
        not_loaded = [p for p in self.plots if p.status == "not loaded"]
        if not_loaded:
            lines.append(f"- {len(not_loaded)} declared plot files DVC cannot read (not plots: "
                         f"{', '.join(f'`{p.name}`' for p in not_loaded[:3])}{', …' if len(not_loaded) > 3 else ''}).")
        for rev, errs in self.errors.items():
            lines.append(f"- {rev}: {len(errs)} file(s) could not be read ({_md(errs[0])}).")
        if m.changes:
            top = sorted(m.changes, key=lambda c: -c.relative)[:TOP_N]
            lines += ["", f"Largest metric changes ({len(top)} of {len(m.changes)}):", "",
                      "| metric | A | B | Δ | Δ % |", "|---|---:|---:|---:|---:|"]
            lines += [f"| `{_md(_short(c.file))}:{_md(c.key)}` | {_md(fmt(c.old))} | {_md(fmt(c.new))} | "
                      + " | ".join(_delta_cells(c)) + " |" for c in top]
        return lines


def _short(file: str) -> str:
    return file.removeprefix("metrics/").removesuffix(".json")


def compare(repo: Path, a: str, b: str, rtol: float = RTOL, atol: float = ATOL,
            image_dir: Path | None = None) -> Comparison:
    repo = repo.resolve()
    sha_a, sha_b = check_rev(repo, a), check_rev(repo, b)
    order = PipelineOrder.load(repo)
    metrics, params, errors = load_revisions(repo, a, b)
    revs = [a] if a == b else [a, b]
    args = ["plots", "diff", *revs, "--json"]
    if image_dir is not None:
        args += ["-o", str(image_dir)]
    raw = run_dvc(repo, *args)
    plots = json.loads(raw) if raw.strip() else {}
    return Comparison(a, b, sha_a, sha_b, rtol, atol,
                      diff_metrics(metrics[a], metrics[b], rtol, atol, order),
                      diff_params(params[a], params[b]),
                      diff_plots(plots, a, b, order) if a != b else [], errors, metrics)


def build_compare(repo: Path, a: str, b: str, out: Path, rtol: float = RTOL, atol: float = ATOL) -> Path:
    """Write `out/README.md` and its images; returns the markdown path."""
    with atomic_dir(out) as tmp:
        cmp = compare(repo, a, b, rtol, atol, image_dir=tmp / "images")
        lines = cmp.summary()
        lines += ["", f"Written by `python -m dlsys.reporting.compare --a {a} --b {b}` "
                      f"(rtol {rtol:g}, atol {atol:g}); drawn offline with matplotlib.", ""]
        lines += _metrics_section(cmp) + _params_section(cmp) + _plots_section(cmp, tmp, Sources(cmp.raw_metrics))
        (tmp / REPORT_NAME).write_text("\n".join(lines) + "\n")
        _prune_images(tmp)
    log.info("comparison %s → %s written to %s", a, b, out / REPORT_NAME)
    return out / REPORT_NAME


def _prune_images(tmp: Path) -> None:
    """DVC writes every image plot of both revisions; keep the ones the report shows."""
    text = (tmp / REPORT_NAME).read_text()
    for f in (tmp / "images").glob("*") if (tmp / "images").is_dir() else []:
        if f"images/{f.name}" not in text:
            f.unlink()


def _metrics_section(cmp: Comparison) -> list[str]:
    lines = ["## Metrics", ""]
    if not cmp.metrics.changes:
        return lines + ["_No metric changed beyond the tolerance._", ""]
    for file in dict.fromkeys(c.file for c in cmp.metrics.changes):
        lines += [f"### {file}", "", "| metric | A | B | Δ | Δ % |", "|---|---:|---:|---:|---:|"]
        lines += [f"| `{_md(c.key)}` | {_md(fmt(c.old))} | {_md(fmt(c.new))} | " + " | ".join(_delta_cells(c)) + " |"
                  for c in cmp.metrics.changes if c.file == file]
        lines.append("")
    return lines


def _params_section(cmp: Comparison) -> list[str]:
    lines = ["## Params", ""]
    if not cmp.params:
        return lines + ["_No param changed._", ""]
    lines += ["| file | param | A | B |", "|---|---|---|---|"]
    lines += [f"| {_md(c.file)} | `{_md(c.key)}` | {_md(fmt(c.old))} | {_md(fmt(c.new))} |" for c in cmp.params]
    return lines + [""]


def _plots_section(cmp: Comparison, tmp: Path, sources: Sources) -> list[str]:
    lines = ["## Plots whose data changed", ""]
    shown = [p for p in cmp.plots if p.status in ("changed", "added", "removed")]
    if not shown:
        lines += ["_No plot's data changed._", ""]
    for p in shown:
        lines += [f"### {p.name}" + ("" if p.status == "changed" else f" ({p.status})"), ""]
        vega = [e for e in p.entries if e.get("type") == "vega"]
        images = [e for e in p.entries if e.get("type") == "image"]
        for i, entry in enumerate(vega):
            lines += _vega_block(p.name, entry, tmp, i, sources, cmp.a)
        if images:
            lines += _image_block(images, tmp, cmp.a)
        for msg in p.errors:
            lines.append(f"- could not load {_md(msg)}")
        if p.errors:
            lines.append("")
    not_loaded = [p for p in cmp.plots if p.status == "not loaded"]
    if not_loaded:
        lines += ["## Declared plot files DVC cannot read", ""]
        lines += [f"- `{p.name}`: {_md(p.errors[0]) if p.errors else 'no data'}" for p in not_loaded]
        lines.append("")
    return lines


def _vega_block(name: str, entry: Mapping, tmp: Path, i: int, sources: Sources, base: str) -> list[str]:
    spec = entry.get("content") or {}
    revs = ", ".join(f"`{r}`" for r in entry.get("revisions", []))
    chart = chart_from_vega(name, spec, base=base)
    source = sources.label(name, list(entry.get("revisions", [])))
    if chart is not None and source:
        chart.title = titled(chart.title, source)
    suffix = f"-{i}" if i else ""
    if chart is None:
        raw = tmp / "specs" / f"{_slug(name)}{suffix}.vl.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(spec, indent=1))
        rel = raw.relative_to(tmp).as_posix()
        return [f"_Not rendered offline: this template is not understood here; its Vega-Lite spec "
                f"(with data) is in [{rel}]({rel})._", ""]
    png = tmp / "plots" / f"{_slug(name)}{suffix}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    render(chart, png)
    rel = png.relative_to(tmp).as_posix()
    return [f"![{name}]({rel})", "", f"Revisions: {revs}.", ""]


def _image_block(images: list[Mapping], tmp: Path, base: str) -> list[str]:
    """One column per revision, A on the left."""
    cells = []
    for e in sorted(images, key=lambda e: base not in e.get("revisions", [])):
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
    header = "| " + " | ".join(f"`{_md(r)}`" for r, _ in cells) + " |"
    sep = "|" + "---|" * len(cells)
    body = "| " + " | ".join(c for _, c in cells) + " |"
    return [header, sep, body, ""]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    ap.add_argument("--a", default="HEAD", help="base revision A (a git revision or `workspace`; default HEAD)")
    ap.add_argument("--b", default=WORKSPACE, help="revision B compared with A (default: workspace)")
    ap.add_argument("--rev", help="old spelling of --a")
    ap.add_argument("--rtol", type=float, default=RTOL, help=f"relative tolerance for metrics (default {RTOL:g})")
    ap.add_argument("--atol", type=float, default=ATOL, help=f"absolute tolerance for metrics (default {ATOL:g})")
    ap.add_argument("--out", default="reports/compare", type=Path, help="report directory (replaced)")
    ap.add_argument("--repo", default=".", type=Path, help="repository root (default: current directory)")
    args = ap.parse_args(argv)
    if args.rtol < 0 or args.atol < 0:
        raise UserError("--rtol and --atol must be >= 0")
    md = build_compare(args.repo, args.rev or args.a, args.b, args.out.resolve(), args.rtol, args.atol)
    text = md.read_text()
    sys.stdout.write(text.split("\nWritten by ")[0].rstrip() + f"\n\nDetails: {md}\n")


if __name__ == "__main__":
    from dlsys.core.stage import run_stage

    run_stage(lambda: main(), name="compare")
