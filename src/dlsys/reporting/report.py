"""`make report`: the results page, `reports/index.html`, generated from `metrics/`, `plots/` and `audio/`.

It opens on the headline table: each experiment's number beside the course's claim, the best published
student number and the target (`claims.yaml` beside this module), with the data it was measured on.
Then every family and step in pipeline order (the stage order of dvc.yaml): the step's figures (click
for full size), its CSV curves drawn with matplotlib when the stage drew no figure of them, audio
players for its examples (`audio/<family>/<step>/`, and any wav still under `plots/` or
`data/outputs/`), and its metrics. Every file the page shows is copied under `reports/assets/` and
linked relatively, so the `reports/` folder can be zipped and opened anywhere, with no network.

    python -m dlsys.reporting.report --out reports
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import yaml

from dlsys.core.errors import UserError
from dlsys.core.outputs import atomic_dir, atomic_path
from dlsys.plots import titled
from dlsys.reporting.charts import Chart, bar_chart, confusion_chart, guess_chart, long_rows, render, xy_chart
from dlsys.reporting.pipeline import UNRANKED, PipelineOrder

log = logging.getLogger("dlsys.reporting.report")

IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
AUDIO_SUFFIXES = (".wav",)
DEFAULT_MAX_AUDIO = 8     # players per directory; the rest are counted, not embedded
LIST_INLINE_MAX = 10      # metric lists up to this long are shown inline
METRICS_OPEN_MAX = 12     # a step's metrics table starts unfolded up to this many rows
UNITS = ("percent", "dB", "number")
CLAIMS = "claims.yaml"


@dataclass
class Step:
    family: str
    name: str
    metrics_file: Path | None = None
    files: list[Path] = field(default_factory=list)  # plots/<family>/<name>/ and audio/<family>/<name>/
    rank: int = UNRANKED

    @property
    def anchor(self) -> str:
        return f"{self.family}/{self.name}" if self.name else self.family


# ---------------------------------------------------------------- discovery

def _dirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")) if path.is_dir() else []


def _visible_files(path: Path) -> list[Path]:
    """Files under `path`, skipping hidden ones (atomic writers' temporaries)."""
    return sorted(p for p in path.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def discover(root: Path, order: PipelineOrder | None = None) -> dict[str, list[Step]]:
    """family → its steps, from metrics/<family>/<step>.json, plots/<family>/<step>/ and
    audio/<family>/<step>/; families and steps in pipeline order."""
    order = order or PipelineOrder.load(root)
    metrics, plots, audio = root / "metrics", root / "plots", root / "audio"
    families: dict[str, dict[str, Step]] = {}
    for fam in set(_dirs(metrics)) | set(_dirs(plots)) | set(_dirs(audio)):
        steps = families.setdefault(fam, {})
        for f in sorted((metrics / fam).glob("*.json")) if (metrics / fam).is_dir() else []:
            steps.setdefault(f.stem, Step(fam, f.stem)).metrics_file = f
        for base in (plots, audio):
            for name in _dirs(base / fam):
                steps.setdefault(name, Step(fam, name)).files += _visible_files(base / fam / name)
            loose = [p for p in (base / fam).glob("*") if p.is_file() and not p.name.startswith(".")] \
                if (base / fam).is_dir() else []
            if loose:
                steps.setdefault("", Step(fam, "")).files += sorted(loose)
        for step in steps.values():
            candidates = [f"metrics/{fam}/{step.name}.json", f"plots/{fam}/{step.name}", f"audio/{fam}/{step.name}"]
            step.rank = min(order.rank(c) for c in candidates) if step.name else UNRANKED
    ranked = {fam: sorted(steps.values(), key=lambda s: (s.rank, s.name)) for fam, steps in families.items()}
    return dict(sorted(ranked.items(), key=lambda kv: (min((s.rank for s in kv[1]), default=UNRANKED), kv[0])))


def output_audio(root: Path) -> dict[str, dict[Path, list[Path]]]:
    """family → {directory: wavs} under data/outputs/ (audio written by older stages)."""
    out: dict[str, dict[Path, list[Path]]] = {}
    base = root / "data" / "outputs"
    if base.is_dir():
        for wav in sorted(base.rglob("*")):
            if wav.suffix.lower() in AUDIO_SUFFIXES and wav.is_file() and not wav.name.startswith("."):
                fam = wav.relative_to(base).parts[0]
                out.setdefault(fam, {}).setdefault(wav.parent, []).append(wav)
    return out


def plot_declarations(root: Path) -> dict[str, dict]:
    """Single-file plot declarations of dvc.yaml (`path: {template, x, y}`), used to draw the CSVs."""
    file = root / "dvc.yaml"
    try:
        doc = yaml.safe_load(file.read_text()) if file.is_file() else {}
    except yaml.YAMLError as exc:
        log.warning("%s: not read (%s); CSVs are drawn from their columns", file, exc)
        return {}
    decls: dict[str, dict] = {}
    for entry in (doc or {}).get("plots") or []:
        if isinstance(entry, dict):
            for path, spec in entry.items():
                if isinstance(spec, dict) and not isinstance(spec.get("y"), dict):
                    decls[str(path)] = spec
    return decls


# ---------------------------------------------------------------- claims: the headline table

def load_claims(path: Path | None = None) -> list[dict]:
    """The experiments of the headline table, checked; a malformed file is a one-line error."""
    text = Path(path).read_text() if path else resources.files("dlsys.reporting").joinpath(CLAIMS).read_text()
    where = path or f"dlsys/reporting/{CLAIMS}"
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML ({exc})") from None
    rows = doc.get("experiments") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise UserError(f"{where}: expected a list under `experiments:`")
    for i, row in enumerate(rows):
        missing = [k for k in ("family", "experiment", "course", "published", "metric") if k not in (row or {})]
        if missing:
            raise UserError(f"{where}: experiment {i + 1} lacks {', '.join(missing)}")
        for ref in [row] + list(row.get("also") or []):
            if ref.get("metric") is not None and ref.get("unit") not in UNITS:
                raise UserError(f"{where}: experiment {i + 1} ({row['experiment']}): unit must be one of {UNITS}")
    return rows


_SELECT = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<key>[^=\]]+)=(?P<value>[^\]]*)\]$")


def lookup(data: Any, key: str) -> Any:
    """`a.b`, and `sweep[rank=20].test_acc` (the list element whose `rank` is 20); KeyError if absent."""
    node = data
    for part in key.split("."):
        m = _SELECT.match(part)
        name = m.group("name") if m else part
        if not isinstance(node, Mapping) or name not in node:
            raise KeyError(key)
        node = node[name]
        if m:
            hits = [e for e in node if isinstance(e, Mapping) and str(e.get(m.group("key"))) == m.group("value")] \
                if isinstance(node, list) else []
            if not hits:
                raise KeyError(key)
            node = hits[0]
    return node


class MetricsReader:
    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[str, tuple[dict | None, str | None]] = {}

    def file(self, rel: str) -> tuple[dict | None, str | None]:
        if rel not in self._cache:
            path = self.root / rel
            self._cache[rel] = read_metrics(path) if path.is_file() else (None, f"{rel} not found")
        return self._cache[rel]

    def value(self, ref: str) -> tuple[Any, str | None, str | None]:
        """(value, data source, problem) for "file:key"."""
        rel, _, key = ref.partition(":")
        data, problem = self.file(rel)
        if data is None:
            return None, None, problem
        source = data.get("data_source")
        try:
            return lookup(data, key), source, None
        except KeyError:
            return None, source, f"{rel} has no {key}"


def fmt_unit(value: Any, unit: str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if unit == "percent":
        return f"{100 * value:.2f}%"
    if unit == "dB":
        return f"{value:.2f} dB"
    return f"{value:.3g}"


# ---------------------------------------------------------------- content

def flatten(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flatten(value, name + ".")
        else:
            rows.append((name, value))
    return rows


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) <= LIST_INLINE_MAX and all(not isinstance(v, (list, dict)) for v in value):
            return "[" + ", ".join(fmt(v) for v in value) + "]"
        return f"list of {len(value)}"
    return str(value)


def read_metrics(path: Path) -> tuple[dict | None, str | None]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"{path.name}: not readable JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"{path.name}: expected a JSON object"
    return data, None


def csv_chart(path: Path, rel: str, decl: Mapping | None, source: str) -> tuple[Chart | None, str | None]:
    """The chart for a CSV (its dvc.yaml declaration if any, else a guess from its columns)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), list(reader.fieldnames or [])
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        return None, f"not readable as CSV ({exc})"
    if not rows:
        return None, "empty CSV"
    title = titled(rel, source)
    if decl:
        template = str(decl.get("template", "linear"))
        x, ys = decl.get("x"), decl.get("y")
        ys = [ys] if isinstance(ys, str) else list(ys or [])
        missing = [c for c in [x, *ys] if c and c not in columns]
        if not x or not ys or missing:
            return None, f"dvc.yaml declares columns {missing or [x, *ys]} that the CSV lacks"
        if template.startswith("confusion"):
            return confusion_chart(title, rows, x, ys[0], normalized=template == "confusion_normalized"), None
        if template.startswith("bar_horizontal"):
            return bar_chart(title, rows, x, ys[0]), None
        kind = "scatter" if template.startswith("scatter") else "line"
        return xy_chart(title, long_rows(rows, x, ys), x, "value", ["field"], kind=kind,
                        y_label=ys[0] if len(ys) == 1 else "value"), None
    chart = guess_chart(title, rows, columns)
    return (chart, None) if chart else (None, "columns not drawable (no dvc.yaml declaration)")


# ---------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222;
padding:0 16px;line-height:1.4}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:44px}
h3{margin:28px 0 8px;font-family:ui-monospace,monospace}
.meta{color:#666;font-size:13px} nav{margin:10px 0 4px} nav a{margin-right:14px;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top} th{background:#f6f6f6}
td.v{text-align:right;font-family:ui-monospace,monospace;white-space:nowrap}
table.headline td.ours{font-weight:700;font-size:14px} .also{display:block;font-weight:400;font-size:11px;color:#555}
caption{caption-side:top;text-align:left;color:#555;font-size:12px;padding-bottom:4px}
.src{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.src-synthetic{background:#fff3cd;color:#7a5b00}.src-real{background:#d1e7dd;color:#0f5132}.src-unknown{background:#eee}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;max-width:100%} figure img{max-width:520px;max-height:440px;border:1px solid #eee;cursor:zoom-in}
figcaption{font-size:12px;color:#555;font-family:ui-monospace,monospace}
details{margin:6px 0} summary{cursor:pointer;color:#444;font-size:13px}
.note{color:#8a6d3b;font-size:13px} audio{width:300px;display:block}
"""


def _badge(source: str | None) -> str:
    source = source or "unknown"
    kind = source if source in ("synthetic", "real") else "unknown"
    return f'<span class="src src-{kind}">{html.escape(source)}</span>'


class Assets:
    """Copies what the page shows under out/assets/, keeping its path in the repository, and returns
    the page-relative link."""

    def __init__(self, root: Path, tmp: Path):
        self.root, self.tmp = root, tmp

    def link(self, path: Path) -> str:
        rel = path.relative_to(self.root)
        dst = self.tmp / rel
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst)
        return "assets/" + quote(rel.as_posix())

    def drawn(self, rel: Path) -> tuple[Path, str]:
        """Where a chart drawn for the page goes, and its link."""
        dst = self.tmp / "drawn" / rel
        return dst, "assets/" + quote(("drawn" / rel).as_posix())


def _figure(src: str, caption: str) -> str:
    text = html.escape(caption)
    return (f'<figure><a href="{src}" target="_blank" title="full size"><img src="{src}" alt="{text}" '
            f'loading="lazy"></a><figcaption>{text}</figcaption></figure>')


def _audio(src: str, caption: str) -> str:
    return (f'<figure><audio controls preload="none" src="{src}"></audio>'
            f'<figcaption>{html.escape(caption)}</figcaption></figure>')


class Page:
    def __init__(self, root: Path, assets: Assets, max_audio: int):
        self.root, self.assets, self.max_audio = root, assets, max_audio
        self.decls = plot_declarations(root)
        self.counts = {"metrics": 0, "images": 0, "charts": 0, "audio": 0}

    def audio_group(self, wavs: list[Path]) -> list[str]:
        shown = wavs[:self.max_audio]
        self.counts["audio"] += len(shown)
        parts = ['<div class="figs">']
        parts += [_audio(self.assets.link(w), w.relative_to(self.root).as_posix()) for w in shown]
        parts.append("</div>")
        if len(wavs) > len(shown):
            parts.append(f'<p class="note">{len(wavs) - len(shown)} more wav files in '
                         f'{html.escape(wavs[0].parent.relative_to(self.root).as_posix())}/ (not embedded).</p>')
        return parts

    def step(self, step: Step) -> list[str]:
        parts = [f'<h3 id="{html.escape(step.anchor)}">{html.escape(step.anchor)}</h3>']
        source, table = "unknown", []
        if step.metrics_file is not None:
            data, problem = read_metrics(step.metrics_file)
            rel = step.metrics_file.relative_to(self.root).as_posix()
            if problem:
                parts.append(f'<p class="note">{html.escape(problem)}</p>')
            else:
                source = str(data.get("data_source") or "unknown")
                rows = [(k, v) for k, v in flatten(data) if k != "data_source"]
                opened = " open" if len(rows) <= METRICS_OPEN_MAX else ""
                table = [f"<details{opened}><summary>{len(rows)} metrics · <code>{html.escape(rel)}</code>"
                         f"</summary><table><tr><th>metric</th><th>value</th></tr>"]
                table += [f'<tr><td>{html.escape(k)}</td><td class="v">{html.escape(fmt(v))}</td></tr>'
                          for k, v in rows]
                table.append("</table></details>")
                self.counts["metrics"] += 1
            parts.append(f'<p class="meta">{_badge(source)} data</p>')
        figs, notes, data_links = [], [], []
        wavs: dict[Path, list[Path]] = {}
        stems_with_image = {(f.parent, f.stem) for f in step.files if f.suffix.lower() in IMAGE_SUFFIXES}
        for f in step.files:
            rel = f.relative_to(self.root).as_posix()
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                figs.append(_figure(self.assets.link(f), rel))
                self.counts["images"] += 1
            elif suffix in AUDIO_SUFFIXES:
                wavs.setdefault(f.parent, []).append(f)
            elif suffix == ".csv" and (f.parent, f.stem) in stems_with_image:
                data_links.append(f'<a href="{self.assets.link(f)}">{html.escape(f.name)}</a>')
            elif suffix == ".csv":
                chart, problem = csv_chart(f, rel, self.decls.get(rel), source)
                if chart is None:
                    notes.append(f'<p class="note">{html.escape(rel)}: not drawn ({html.escape(problem)}).</p>')
                    continue
                png, link = self.assets.drawn(f.relative_to(self.root).with_suffix(".png"))
                render(chart, png)
                figs.append(_figure(link, f"{rel} (drawn from the CSV)"))
                self.counts["charts"] += 1
        if figs:
            parts += ['<div class="figs">', *figs, "</div>"]
        if data_links:  # the stage drew these itself: link the numbers behind its figures
            parts.append(f'<p class="meta">data: {" · ".join(data_links)}</p>')
        parts += notes
        for group in wavs.values():
            parts += self.audio_group(group)
        return parts + table

    def headline(self, claims: list[dict], steps: dict[str, Step]) -> list[str]:
        reader = MetricsReader(self.root)
        parts = ['<table class="headline"><tr><th>family</th><th>experiment</th><th>ours</th><th>data</th>'
                 "<th>course claim</th><th>best published</th><th>target on real data</th></tr>"]
        for row in claims:
            if row["metric"]:
                value, source, problem = reader.value(row["metric"])
                ours = html.escape(fmt_unit(value, row.get("unit")))
                if problem:
                    ours += f'<span class="also note">{html.escape(problem)}</span>'
                for extra in row.get("also") or []:
                    v, _, p = reader.value(extra["metric"])
                    if not p:
                        ours += (f'<span class="also">{html.escape(extra.get("label", ""))} '
                                 f"{html.escape(fmt_unit(v, extra.get('unit')))}</span>")
                anchor = "/".join(Path(row["metric"].partition(":")[0]).with_suffix("").parts[1:3])
            else:
                anchor = row.get("step") or row["family"]
                source = reader.file(f"metrics/{anchor}.json")[0] or {}
                source = source.get("data_source") if isinstance(source, dict) else None
                ours = "figures"
            experiment = html.escape(row["experiment"])
            if anchor in steps:
                experiment = f'<a href="#{html.escape(anchor)}">{experiment}</a>'
            parts.append(f"<tr><td>{html.escape(row['family'])}</td><td>{experiment}</td>"
                         f'<td class="v ours">{ours}</td><td>{_badge(source)}</td>'
                         f"<td>{html.escape(str(row['course']))}</td><td>{html.escape(str(row['published']))}</td>"
                         f"<td>{html.escape(str(row.get('target', '')))}</td></tr>")
        parts.append("</table>")
        return parts


def _revision(root: Path) -> str:
    """`<short sha>` of the checkout (plus `+ local changes`), or '' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if sha.returncode != 0:
        return ""
    return sha.stdout.strip() + (" + local changes" if dirty.stdout.strip() else "")


def build_report(root: Path, out: Path, max_audio: int = DEFAULT_MAX_AUDIO, claims: Path | None = None) -> Path:
    """Write `out/index.html` and `out/assets/` (everything the page shows); returns the page's path."""
    root, out = root.resolve(), out.resolve()
    rows = load_claims(claims)
    families = discover(root)
    legacy_audio = output_audio(root)
    names = list(families) + [f for f in legacy_audio if f not in families]
    all_steps = {s.anchor: s for steps in families.values() for s in steps}
    with atomic_dir(out / "assets") as tmp:
        page = Page(root, Assets(root, tmp), max_audio)
        body = []
        for fam in names:
            body.append(f'<h2 id="fam-{html.escape(fam)}">{html.escape(fam)}</h2>')
            for step in families.get(fam, []):
                body += page.step(step)
            for d, wavs in legacy_audio.get(fam, {}).items():
                body.append(f"<h3>{html.escape(d.relative_to(root).as_posix())}/</h3>")
                body += page.audio_group(wavs)
        if not names:
            body.append('<p class="note">No results yet: run <code>make repro</code>, '
                        'then <code>make report</code>.</p>')
        head = page.headline(rows, all_steps)
        nav = " ".join(f'<a href="#fam-{html.escape(f)}">{html.escape(f)}</a>' for f in names)
        c = page.counts
        rev = _revision(root)
        doc = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               '<meta name="viewport" content="width=device-width, initial-scale=1">',
               "<title>dlsys results</title>", f"<style>{CSS}</style></head><body>",
               "<h1>dlsys results</h1>",
               f'<p class="meta">From <code>metrics/</code>, <code>plots/</code> and <code>audio/</code>'
               f"{f' at <code>{html.escape(rev)}</code>' if rev else ''}, by <code>make report</code>: "
               f"{c['metrics']} metrics files, {c['images']} figures, {c['charts']} charts drawn from CSVs, "
               f"{c['audio']} audio clips. Click a figure for full size.</p>",
               "<h2 id=\"headline\">Headline results</h2>",
               '<p class="meta">The course\'s and the published students\' numbers are on the real datasets. '
               'A row marked <span class="src src-synthetic">synthetic</span> was measured on this project\'s '
               "synthetic stand-in data: it shows the pipeline works, and is not comparable with them.</p>",
               *head, f"<nav>{nav}</nav>", *body, "</body></html>"]
    index = out / "index.html"
    with atomic_path(index) as tmp_index:
        tmp_index.write_text("\n".join(doc) + "\n")
    log.info("results page: %s (%s)", index, ", ".join(f"{k} {v}" for k, v in c.items()))
    return index


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    ap.add_argument("--out", default="reports", type=Path, help="directory for index.html and assets/")
    ap.add_argument("--root", default=".", type=Path, help="repository root holding metrics/, plots/, audio/")
    ap.add_argument("--max-audio", default=DEFAULT_MAX_AUDIO, type=int,
                    help=f"audio players per directory (default {DEFAULT_MAX_AUDIO})")
    ap.add_argument("--claims", type=Path, help=f"headline table (default: {CLAIMS} beside this module)")
    args = ap.parse_args(argv)
    build_report(args.root, args.out, args.max_audio, args.claims)


if __name__ == "__main__":
    from dlsys.core.stage import run_stage

    run_stage(lambda: main(), name="report")
