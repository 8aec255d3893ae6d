"""`make report`: the results page opens on the headline table, lists families and steps in pipeline
order, and is self-contained under its output folder (assets copied, relative links)."""

from __future__ import annotations

import json
import re
import shutil
import wave
from pathlib import Path
from urllib.parse import unquote

import matplotlib.image as mpimg
import numpy as np
import pytest

from dlsys.core.errors import UserError
from dlsys.reporting.report import build_report, load_claims, lookup

from .browser import CHROMIUM, open_page

# stages deliberately not in alphabetical order: the page must follow them
DVC_YAML = """\
stages:
  acquire:
    cmd: python acquire.py
    outs:
      - metrics/data/raw.json
      - plots/data/raw
  zeta_train:
    cmd: python train.py
    outs:
      - metrics/zeta/train.json
      - plots/zeta/train
      - audio/zeta/train
  zeta_eval:
    cmd: python eval.py
    outs:
      - metrics/zeta/eval.json
  alpha_fit:
    foreach: [1, 2]
    do:
      cmd: python fit.py ${item}
      outs:
        - metrics/alpha/fit${item}.json
plots:
  - plots/zeta/train/curve.csv:
      x: epoch
      y: [loss, acc]
"""

CLAIMS = """\
experiments:
  - family: zeta
    experiment: the zeta model
    metric: metrics/zeta/train.json:test_acc
    unit: percent
    also:
      - label: best sweep
        metric: metrics/zeta/train.json:sweep[rank=20].acc
        unit: percent
    course: "> 90%"
    published: "91.5%"
    target: "≥ 95%"
  - family: alpha
    experiment: alpha's SNR
    metric: metrics/alpha/fit1.json:snr_db
    unit: dB
    course: good
    published: "11.27 dB"
  - family: zeta
    experiment: a renamed metric
    metric: metrics/zeta/eval.json:gone
    unit: number
    course: "-"
    published: "-"
"""


def _wav(path: Path, seconds: float = 0.1, sr: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(sr * seconds)) / sr) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(samples.tobytes())


def _png(path: Path, shade: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mpimg.imsave(path, np.full((8, 8), shade), cmap="gray", vmin=0, vmax=1)


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "claims.yaml").write_text(CLAIMS)
    _json(root / "metrics/zeta/train.json",
          {"data_source": "synthetic", "test_acc": 0.8125, "per_class": {"cat": 0.71875}, "diverged": False,
           "history": list(range(50)), "sweep": [{"rank": 10, "acc": 0.5}, {"rank": 20, "acc": 0.625}]})
    _json(root / "metrics/zeta/eval.json", {"data_source": "real", "snr": 1.5})
    _json(root / "metrics/alpha/fit1.json", {"data_source": "real", "snr_db": 12.345678})
    _json(root / "metrics/alpha/fit2.json", {"data_source": "real", "snr_db": 3.0})
    _json(root / "metrics/data/raw.json", {"data_source": "synthetic", "n": 100})
    d = root / "plots/zeta/train"
    d.mkdir(parents=True)
    (d / "curve.csv").write_text("epoch,loss,acc\n1,2.0,0.3\n2,1.0,0.6\n3,0.5,0.8\n")  # declared, no PNG
    (d / "confusion.csv").write_text("actual,predicted\na,a\na,b\nb,b\n")               # undeclared: guessed
    (d / "shown.csv").write_text("x,y\n1,2\n")                                          # the stage drew it
    _png(d / "shown.png", 0.2)
    _png(d / "samples.png", 0.8)
    _png(root / "plots/data/raw/examples.png", 0.5)
    _wav(root / "plots/data/raw/clean_example.wav")          # an old-style wav still in a plots folder
    for i in range(5):
        _wav(root / f"audio/zeta/train/test_{i:02d}.wav")
    _wav(root / "data/outputs/timit_denoise/te/utt_00.wav")
    return root


def _refs(page: str, tag: str, attr: str = "src") -> list[str]:
    return [unquote(m) for m in re.findall(rf'<{tag}\b[^>]*\b{attr}="([^"#][^"]*)"', page)]


def test_headline_table_comes_first_with_our_number_and_the_claims(results: Path, tmp_path: Path):
    page = build_report(results, tmp_path / "r", claims=results / "claims.yaml").read_text()
    first_h2 = re.findall(r"<h2[^>]*>([^<]+)</h2>", page)[0]
    assert first_h2 == "Headline results"
    table = page.split('<table class="headline">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    assert len(rows) == 3
    zeta = rows[0]
    for text in ("81.25%", "best sweep 62.50%", "&gt; 90%", "91.5%", "≥ 95%", "src-synthetic",
                 'href="#zeta/train"'):
        assert text in zeta, text
    assert "12.35 dB" in rows[1] and "src-real" in rows[1]
    assert "—" in rows[2] and "metrics/zeta/eval.json has no gone" in rows[2]  # a drifted key is visible


def test_families_and_steps_follow_the_pipeline(results: Path, tmp_path: Path):
    page = build_report(results, tmp_path / "r", claims=results / "claims.yaml").read_text()
    families = re.findall(r'<h2 id="fam-([^"]+)"', page)
    steps = re.findall(r'<h3 id="([^"]+)"', page)
    assert families == ["data", "zeta", "alpha", "timit_denoise"]  # dvc.yaml order; data/outputs last
    assert steps == ["data/raw", "zeta/train", "zeta/eval", "alpha/fit1", "alpha/fit2"]


def test_page_shows_metrics_figures_full_size_and_audio(results: Path, tmp_path: Path):
    out = tmp_path / "reports"
    page = build_report(results, out, max_audio=3, claims=results / "claims.yaml").read_text()
    for text in ("0.8125", "per_class.cat", "0.7188", "false", "list of 50", "metrics/zeta/train.json",
                 "12.35", "metrics/alpha/fit1.json"):
        assert text in page, text
    imgs = _refs(page, "img")
    assert sorted(Path(s).name for s in imgs) == ["confusion.png", "curve.png", "examples.png", "samples.png",
                                                   "shown.png"]
    drawn = [out / s for s in imgs if s.startswith("assets/drawn/")]
    assert len(drawn) == 2 and all(mpimg.imread(p).std() > 0.01 for p in drawn)
    assert not (out / "assets/drawn/plots/zeta/train/shown.png").exists()  # the stage drew that one
    # every figure is a link to itself at full size
    for src in imgs:
        assert re.search(rf'<a href="{re.escape(src)}"[^>]*><img src="{re.escape(src)}"', unquote(page)), src
    srcs = _refs(page, "audio")
    assert sorted(Path(s).name for s in srcs) == ["clean_example.wav", "test_00.wav", "test_01.wav", "test_02.wav",
                                                  "utt_00.wav"]
    assert "2 more wav files in audio/zeta/train/" in page
    assert "audio/zeta/train/test_00.wav" in page  # the clip is captioned with where it lives
    assert page.index('id="zeta/train"') < page.index("test_00.wav") < page.index('id="zeta/eval"')


def test_page_is_self_contained(results: Path, tmp_path: Path):
    out = tmp_path / "reports"
    build_report(results, out, claims=results / "claims.yaml")
    moved = tmp_path / "unzipped" / "reports"  # as if zipped, sent and unpacked elsewhere
    shutil.copytree(out, moved)
    shutil.rmtree(results)
    page = (moved / "index.html").read_text()
    links = _refs(page, "img") + _refs(page, "audio") + _refs(page, "a", "href")
    assert len(links) > 10
    for link in links:
        assert not link.startswith(("/", "..", "http", "file:")), link
        assert (moved / link).is_file(), link


def test_page_is_rebuilt_from_current_files(results: Path, tmp_path: Path):
    out = tmp_path / "reports"
    build_report(results, out, claims=results / "claims.yaml")
    shutil.rmtree(results / "plots/zeta")
    (results / "metrics/zeta/train.json").write_text(json.dumps({"data_source": "real", "test_acc": 0.5}))
    page = build_report(results, out, claims=results / "claims.yaml").read_text()
    assert "0.8125" not in page and "50.00%" in page
    assert not (out / "assets/plots/zeta").exists() and not (out / "assets/drawn").exists()  # nothing stale


def test_bad_files_get_a_note_not_a_crash(results: Path, tmp_path: Path):
    (results / "metrics/zeta/broken.json").write_text("{not json")
    (results / "plots/zeta/train/odd.csv").write_text("a,b,c\nx,1,y\n")
    page = build_report(results, tmp_path / "r", claims=results / "claims.yaml").read_text()
    assert "broken.json: not readable JSON" in page
    assert "odd.csv: not drawn" in page
    assert "0.8125" in page


def test_empty_repo_says_what_to_run(tmp_path: Path):
    page = build_report(tmp_path, tmp_path / "r").read_text()
    assert "No results yet" in page and "make repro" in page


def test_lookup_picks_list_elements_by_key():
    data = {"a": {"b": 1}, "sweep": [{"rank": 10, "acc": 0.5}, {"rank": 20, "acc": 0.625}]}
    assert lookup(data, "a.b") == 1 and lookup(data, "sweep[rank=20].acc") == 0.625
    for missing in ("a.c", "sweep[rank=30].acc", "x"):
        with pytest.raises(KeyError):
            lookup(data, missing)


def test_shipped_claims_resolve_against_the_repositorys_metrics():
    """Every headline row points at a metric the pipeline writes (fails, naming the row, on a rename)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "metrics").is_dir():
        pytest.skip("no metrics/ in this checkout")
    from dlsys.reporting.report import MetricsReader

    reader = MetricsReader(root)
    for row in load_claims():
        for ref in [row] + list(row.get("also") or []):
            if ref["metric"]:
                _, source, problem = reader.value(ref["metric"])
                assert problem is None, f"{row['experiment']}: {problem}"
                assert source in ("synthetic", "real"), ref["metric"]


def test_malformed_claims_are_one_line_errors(tmp_path: Path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("experiments:\n  - family: x\n    experiment: y\n    metric: m.json:k\n    unit: furlongs\n"
                   "    course: a\n    published: b\n")
    with pytest.raises(UserError, match="unit must be one of"):
        load_claims(bad)
    bad.write_text("experiments:\n  - family: x\n")
    with pytest.raises(UserError, match="lacks experiment, course, published, metric"):
        load_claims(bad)


def test_cli_writes_index(results: Path, tmp_path: Path):
    from dlsys.reporting.report import main

    out = tmp_path / "cli"
    main(["--root", str(results), "--out", str(out), "--max-audio", "1", "--claims", str(results / "claims.yaml")])
    page = (out / "index.html").read_text()
    assert "0.8125" in page and page.count("<audio controls") == 3  # one per wav directory


@pytest.mark.slow
def test_page_renders_in_headless_chromium(results: Path, tmp_path: Path):
    if not CHROMIUM:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    index = build_report(results, tmp_path / "reports", claims=results / "claims.yaml")
    probe = ("[document.images.length, Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0)"
             ".length, document.querySelectorAll('audio').length, document.querySelectorAll('table.headline tr')"
             ".length]")
    # lazy images load as they scroll into view: make them eager for the count
    report = open_page(index, "(document.querySelectorAll('img').forEach(i => i.loading = 'eager'), " + probe + ")")
    assert report.errors == [], report.errors
    n_images, n_loaded, n_audio, n_rows = report.value
    assert n_images == 5 and n_loaded == n_images
    assert n_audio == 7 and n_rows == 4  # 5 + 1 + 1 clips (default cap 8 per folder); header + 3 rows
