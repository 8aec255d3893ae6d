"""`dvc plots show` / `dvc plots diff` render with no network: the vendored Vega template, in a browser."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from dlsys.reporting.compare import run_dvc

from .browser import CHROMIUM, open_page
from .plot_fixtures import PLOTS_YAML

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / ".dvc" / "plots" / "vendor"
# vega-embed marks each container it filled; a view is its canvas or SVG
PROBE = ("[document.readyState, document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length,"
         " Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length]")

DVC_YAML = "plots:\n" + PLOTS_YAML


def _updater():
    spec = importlib.util.spec_from_file_location("vega_vendor_update", VENDOR / "update.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _html_template() -> str | None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".dvc" / "config")
    return cfg.get("plots", "html_template", fallback=None)


def test_config_points_at_the_vendored_template():
    value = _html_template()
    assert value, ".dvc/config sets no plots.html_template: DVC's page would load Vega from a CDN"
    template = ROOT / ".dvc" / value  # DVC resolves a relative path against .dvc/
    assert template.resolve() == _updater().TEMPLATE


def test_template_is_the_npm_packages_unchanged_with_their_licences():
    update = _updater()
    assert update.check() == []
    manifest = json.loads((VENDOR / "vendor.json").read_text())
    assert [p["name"] for p in manifest["packages"]] == ["vega", "vega-lite", "vega-embed"]
    for p in manifest["packages"]:
        licence = (VENDOR / p["license_file"]).read_text()
        assert "Redistribution and use in source and binary forms" in licence, p["name"]
    text = update.TEMPLATE.read_text()
    assert not re.search(r"<script[^>]+src=", text), "the template must not load scripts from anywhere"


def test_check_catches_an_edited_template(tmp_path: Path, monkeypatch):
    update = _updater()
    copy = tmp_path / "offline.html"
    text = update.TEMPLATE.read_text()
    copy.write_text(text.replace('t.version="5.', 't.version="4.', 1))
    monkeypatch.setattr(update, "TEMPLATE", copy)
    assert any("vega: inlined code differs" in p for p in update.check())
    copy.write_text(text.replace("</head>", "{scripts}\n</head>", 1))
    assert any("{scripts}" in p for p in update.check())


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


def _write(repo: Path, losses: list[float], snr: float, shade: float) -> None:
    d = repo / "plots/fam/train"
    d.mkdir(parents=True, exist_ok=True)
    (d / "curve.csv").write_text("epoch,loss,acc\n" + "".join(f"{i + 1},{v},0.5\n" for i, v in enumerate(losses)))
    (d / "confusion.csv").write_text("actual,predicted\na,a\na,b\nb,b\n")
    (d / "snr.csv").write_text(f"model,snr_db\nfc,{snr}\nrnn,7.5\n")
    mpimg.imsave(d / "picture.png", [[shade, 0.0], [0.0, shade]], cmap="gray", vmin=0, vmax=1)


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    """A git + DVC repo with this project's plots settings, one commit, then a changed workspace."""
    repo = tmp_path_factory.mktemp("plots") / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    run_dvc(repo, "init", "-q")
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _write(repo, [2.0, 1.0, 0.5], 3.25, 1.0)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _write(repo, [1.5, 0.25, 0.125], 4.5, 0.5)
    return repo


def _need_browser() -> None:
    if CHROMIUM:
        return
    reason = "no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)"
    if os.environ.get("DLSYS_REQUIRE_BROWSER"):
        pytest.fail(reason + "; DLSYS_REQUIRE_BROWSER is set, so this is an error here")
    pytest.skip(reason)


def _render(repo: Path, out: Path, *args: str, config: list[str] | None = None) -> tuple[Path, int]:
    """Run `dvc plots <args> -o out` and return the page and how many Vega specs it embeds."""
    run_dvc(repo, "plots", *args, "-o", str(out))
    page = out / "index.html"
    return page, page.read_text().count("vegaEmbed('#")


pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", [("show",), ("diff", "HEAD")])
def test_dvc_plots_render_offline_in_chromium(plots_repo: Path, tmp_path: Path, command: tuple[str, ...]):
    _need_browser()
    page, n_specs = _render(plots_repo, tmp_path / "out", *command)
    assert n_specs == 3  # the curve, the confusion matrix and the bars
    report = open_page(page, PROBE)
    assert report.errors == [], report.errors
    state, views, images = report.value
    assert state == "complete" and views == n_specs
    assert images == (2 if command[0] == "diff" else 1)  # the PNG, once per revision


def test_without_the_template_the_page_fails_offline(plots_repo: Path, tmp_path: Path):
    """The control: DVC's own page (CDN scripts) gives errors and no views here, so the harness can fail."""
    _need_browser()
    run_dvc(plots_repo, "config", "--local", "plots.html_template", "")
    try:
        page, n_specs = _render(plots_repo, tmp_path / "out", "show")
    finally:
        run_dvc(plots_repo, "config", "--local", "--unset", "plots.html_template")
    assert "cdn.jsdelivr.net" in page.read_text()
    report = open_page(page, PROBE)
    assert report.value[1] == 0
    assert sum("vegaEmbed is not defined" in e for e in report.errors) == n_specs


def test_the_repositorys_own_plots_render_offline(tmp_path: Path):
    """Every Vega plot declared in this repository's dvc.yaml draws, with no console error."""
    _need_browser()
    proc = subprocess.run([str(Path(sys.executable).parent / "dvc"), "plots", "show", "-o", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True)
    page = tmp_path / "out" / "index.html"
    assert page.is_file(), proc.stderr
    n_specs = page.read_text().count("vegaEmbed('#")
    if n_specs == 0:
        pytest.skip("no Vega plots in the workspace (plots/ not produced yet)")
    report = open_page(page, PROBE, timeout=120)
    assert report.errors == [], report.errors[:10]
    assert report.value[1] == n_specs
