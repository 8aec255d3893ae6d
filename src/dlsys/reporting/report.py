"""`make report`: one HTML page with every family's results, generated from `metrics/` and `plots/`.

Per family and step: the metrics JSON as a table (with its data source), the step's images, its CSV
curves drawn with matplotlib when the stage did not save a figure of them, and `<audio>` players for
the wavs (under `plots/` and `data/outputs/<family>/`). Files are referenced by relative paths, so
`reports/index.html` opens from disk with no server and no network.

    python -m dlsys.reporting.report --out reports
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import yaml

from dlsys.core.outputs import atomic_dir, atomic_path
from dlsys.plots import titled
from dlsys.reporting.charts import (Chart, bar_chart, confusion_chart, guess_chart, long_rows, render,
                                    xy_chart)

log = logging.getLogger("dlsys.reporting.report")

IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
AUDIO_SUFFIXES = (".wav",)
DEFAULT_MAX_AUDIO = 8     # players per directory; the rest are counted, not embedded
LIST_INLINE_MAX = 10      # metric lists up to this long are shown inline


@dataclass
class Step:
    family: str
    name: str
    metrics_file: Path | None = None
    files: list[Path] = field(default_factory=list)  # everything under plots/<family>/<name>/


# ---------------------------------------------------------------- discovery

def _dirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")) if path.is_dir() else []


def _visible_files(path: Path) -> list[Path]:
    """Files under `path`, skipping hidden ones (atomic writers' temporaries)."""
    return sorted(p for p in path.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def discover(root: Path) -> dict[str, list[Step]]:
    """family → its steps, from metrics/<family>/<step>.json and plots/<family>/<step>/."""
    metrics, plots = root / "metrics", root / "plots"
    families: dict[str, list[Step]] = {}
    for fam in sorted(set(_dirs(metrics)) | set(_dirs(plots)), key=lambda f: (f != "data", f)):  # data first
        steps: dict[str, Step] = {}
        for f in sorted((metrics / fam).glob("*.json")) if (metrics / fam).is_dir() else []:
            steps.setdefault(f.stem, Step(fam, f.stem)).metrics_file = f
        for name in _dirs(plots / fam):
            steps.setdefault(name, Step(fam, name)).files = _visible_files(plots / fam / name)
        loose = [p for p in (plots / fam).glob("*") if p.is_file() and not p.name.startswith(".")] \
            if (plots / fam).is_dir() else []
        if loose:
            steps.setdefault("", Step(fam, "")).files += sorted(loose)
        families[fam] = [steps[k] for k in sorted(steps)]
    return families


def audio_dirs(root: Path) -> dict[Path, list[Path]]:
    """Directories under data/outputs/ holding wavs → their wavs."""
    out: dict[Path, list[Path]] = {}
    base = root / "data" / "outputs"
    if base.is_dir():
        for wav in sorted(base.rglob("*")):
            if wav.suffix.lower() in AUDIO_SUFFIXES and wav.is_file() and not wav.name.startswith("."):
                out.setdefault(wav.parent, []).append(wav)
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
        return None, f"{path}: not readable JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"{path}: expected a JSON object"
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
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1150px;color:#222;
padding:0 16px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}
h3{margin:24px 0 8px;font-family:ui-monospace,monospace}
.meta{color:#666;font-size:13px} nav a{margin-right:12px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left} td.v{text-align:right;font-family:ui-monospace,monospace}
caption{caption-side:top;text-align:left;color:#555;font-size:12px;padding-bottom:4px}
.src{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600}
.src-synthetic{background:#fff3cd;color:#7a5b00}.src-real{background:#d1e7dd;color:#0f5132}.src-unknown{background:#eee}
.figs{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;max-width:100%} figure img{max-width:540px;max-height:460px;border:1px solid #eee}
figcaption{font-size:12px;color:#555;font-family:ui-monospace,monospace}
.note{color:#8a6d3b;font-size:13px} audio{width:300px;display:block}
"""


def _src(path: Path, out: Path) -> str:
    return quote(Path(os.path.relpath(path, out)).as_posix())


def _badge(source: str) -> str:
    kind = source if source in ("synthetic", "real") else "unknown"
    return f'<span class="src src-{kind}">{html.escape(source)} data</span>'


def _figure(src: str, caption: str) -> str:
    text = html.escape(caption)
    return f'<figure><img src="{src}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _audio(src: str, caption: str) -> str:
    return (f'<figure><audio controls preload="none" src="{src}"></audio>'
            f'<figcaption>{html.escape(caption)}</figcaption></figure>')


def _audio_group(wavs: list[Path], root: Path, out: Path, max_audio: int) -> list[str]:
    parts = ['<div class="figs">']
    parts += [_audio(_src(w, out), w.relative_to(root).as_posix()) for w in wavs[:max_audio]]
    parts.append("</div>")
    if len(wavs) > max_audio:
        parts.append(f'<p class="note">{len(wavs) - max_audio} more wav files in '
                     f'{html.escape(wavs[0].parent.relative_to(root).as_posix())}/ (not embedded).</p>')
    return parts


class Page:
    def __init__(self, root: Path, out: Path, assets: Path, max_audio: int):
        self.root, self.out, self.assets, self.max_audio = root, out, assets, max_audio
        self.decls = plot_declarations(root)
        self.counts = {"metrics": 0, "images": 0, "charts": 0, "audio": 0}

    def step(self, step: Step) -> list[str]:
        label = f"{step.family}/{step.name}" if step.name else step.family
        parts = [f'<h3 id="{html.escape(label)}">{html.escape(label)}</h3>']
        source = "unknown"
        if step.metrics_file is not None:
            data, problem = read_metrics(step.metrics_file)
            rel = step.metrics_file.relative_to(self.root).as_posix()
            if problem:
                parts.append(f'<p class="note">{html.escape(problem)}</p>')
            else:
                source = str(data.get("data_source") or "unknown")
                rows = [(k, v) for k, v in flatten(data) if k != "data_source"]
                parts.append(f'<table><caption>{_badge(source)} <code>{html.escape(rel)}</code></caption>'
                             "<tr><th>metric</th><th>value</th></tr>")
                parts += [f'<tr><td>{html.escape(k)}</td><td class="v">{html.escape(fmt(v))}</td></tr>'
                          for k, v in rows]
                parts.append("</table>")
                self.counts["metrics"] += 1
        figs, notes, wavs, data_links = [], [], [], []
        stems_with_image = {(f.parent, f.stem) for f in step.files if f.suffix.lower() in IMAGE_SUFFIXES}
        for f in step.files:
            rel = f.relative_to(self.root).as_posix()
            suffix = f.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                figs.append(_figure(_src(f, self.out), rel))
                self.counts["images"] += 1
            elif suffix in AUDIO_SUFFIXES:
                wavs.append(f)
            elif suffix == ".csv" and (f.parent, f.stem) in stems_with_image:
                data_links.append(f'<a href="{_src(f, self.out)}">{html.escape(f.name)}</a>')
            elif suffix == ".csv":
                chart, problem = csv_chart(f, rel, self.decls.get(rel), source)
                if chart is None:
                    notes.append(f'<p class="note">{html.escape(rel)}: not drawn ({html.escape(problem)}).</p>')
                    continue
                png = self.assets / f.relative_to(self.root).with_suffix(".png")
                render(chart, png)
                figs.append(_figure(_src(self.out / "assets" / png.relative_to(self.assets), self.out),
                                    f"{rel} (drawn from the CSV)"))
                self.counts["charts"] += 1
        if figs:
            parts += ['<div class="figs">', *figs, "</div>"]
        if data_links:  # the stage drew these itself: link the numbers behind its figures
            parts.append(f'<p class="meta">data: {" · ".join(data_links)}</p>')
        parts += notes
        if wavs:
            self.counts["audio"] += min(len(wavs), self.max_audio)
            parts += _audio_group(wavs, self.root, self.out, self.max_audio)
        return parts

    def audio(self, title: str, groups: dict[Path, list[Path]]) -> list[str]:
        parts = [f"<h3>{html.escape(title)}</h3>"]
        for wavs in groups.values():
            self.counts["audio"] += min(len(wavs), self.max_audio)
            parts += _audio_group(wavs, self.root, self.out, self.max_audio)
        return parts


def build_report(root: Path, out: Path, max_audio: int = DEFAULT_MAX_AUDIO) -> Path:
    """Write `out/index.html` (and the charts it draws under `out/assets/`); returns the page's path."""
    root, out = root.resolve(), out.resolve()
    families = discover(root)
    audio = audio_dirs(root)
    outputs = root / "data" / "outputs"
    audio_by_family: dict[str, dict[Path, list[Path]]] = {}
    for d, wavs in audio.items():
        audio_by_family.setdefault(d.relative_to(outputs).parts[0], {})[d] = wavs
    names = list(families) + [f for f in audio_by_family if f not in families]
    with atomic_dir(out / "assets") as assets:
        page = Page(root, out, assets, max_audio)
        body = []
        for fam in names:
            body.append(f'<h2 id="fam-{html.escape(fam)}">{html.escape(fam)}</h2>')
            for step in families.get(fam, []):
                body += page.step(step)
            if fam in audio_by_family:
                body += page.audio(f"{fam}: audio outputs (data/outputs/{fam}/)", audio_by_family[fam])
        if not names:
            body.append('<p class="note">No results yet: run <code>make repro</code>, '
                        'then <code>make report</code>.</p>')
        nav = " ".join(f'<a href="#fam-{html.escape(f)}">{html.escape(f)}</a>' for f in names)
        c = page.counts
        doc = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               "<title>dlsys results</title>", f"<style>{CSS}</style></head><body>",
               "<h1>dlsys results</h1>",
               f'<p class="meta">Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from '
               f"<code>metrics/</code>, <code>plots/</code> and <code>data/outputs/</code> by "
               f"<code>make report</code>: {c['metrics']} metrics files, {c['images']} figures, "
               f"{c['charts']} charts drawn from CSVs, {c['audio']} audio players.</p>",
               f"<nav>{nav}</nav>", *body, "</body></html>"]
    index = out / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text("\n".join(doc) + "\n")
    log.info("results page: %s (%s)", index, ", ".join(f"{k} {v}" for k, v in c.items()))
    return index


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="reports", type=Path, help="directory for index.html and assets/")
    ap.add_argument("--root", default=".", type=Path, help="repository root holding metrics/ and plots/")
    ap.add_argument("--max-audio", default=DEFAULT_MAX_AUDIO, type=int,
                    help=f"audio players per directory (default {DEFAULT_MAX_AUDIO})")
    args = ap.parse_args(argv)
    build_report(args.root, args.out, args.max_audio)


if __name__ == "__main__":
    from dlsys.core.stage import run_stage

    run_stage(lambda: main(), name="report")
