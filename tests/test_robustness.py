"""Faults and hostile input, table-driven: one clear error line (never a traceback), nothing half-written,
the previous good output still in place, no payload ever run.

Four tables, each case = input → the one-line message expected → what must be left:
- READERS: a file in data/raw/<name>/ (corrupt, hostile, wrongly typed) read by `dlsys.data.check`;
- ACQUIRE: the acquisition stage (dlsys.tasks.datasets.run_acquire, in-process for speed) over bad
  real-data inputs in data/external/<name>/ or from a local HTTP server, on top of a previous good
  acquisition whose raw data, plots, audio and metrics must come out byte-identical;
- DOWNLOADS: the download layer against a local HTTP server (redirects, sizes, resume validators, cache);
- PARAMS: params.yaml checks (unknown keys, seed range, meaningless values).
A few subprocess runs prove the stage runner turns these errors into exactly one stderr line.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import yaml

from dlsys.core.errors import DownloadError, UserError
from dlsys.data.idx import write_idx
from dlsys.data.safe_pickle import dump_pickle

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


# =============================================================== helpers: files a test writes itself

def _meta(d: Path, source: str = "real", **extra) -> None:
    (d / "dataset.json").write_text(json.dumps({"source": source, "sr": SR, **extra}))


def _mnist(d: Path) -> None:
    for name, arr in (("train-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8)),
                      ("train-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8)),
                      ("t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8)),
                      ("t10k-labels-idx1-ubyte.gz", np.arange(2, dtype=np.uint8))):
        write_idx(d / name, arr)
    _meta(d)


def _tone(n: int = 8000, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * 220 * np.arange(n) / SR)).astype(np.float32)


def _wav(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(x, np.float32), SR, subtype="PCM_16")


DENOISE_NAMES = ("train_clean_male.wav", "train_dirty_male.wav", "test_01_s.wav", "test_01_x.wav", "test_02_x.wav")


def _denoise(d: Path, n: int = 8000) -> None:
    s = _tone(n)
    for name in DENOISE_NAMES:
        _wav(d / name, s + (0.05 if "dirty" in name or "_x" in name else 0.0))
    _meta(d)


def _sevens(d: Path, train=None) -> None:
    dump_pickle(np.zeros((3, 28, 28), np.float32) if train is None else train, d / "tr7.pkl")
    dump_pickle(np.zeros((2, 28, 28), np.float32), d / "te7.pkl")
    _meta(d)


def _cifar(d: Path, labels=None, data=None) -> None:
    base = d / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    rows = np.zeros((10, 3072), np.uint8) if data is None else data
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        dump_pickle({b"data": rows, b"labels": list(range(10)) if labels is None else labels}, base / name)
    dump_pickle({b"label_names": [f"c{k}".encode() for k in range(10)]}, base / "batches.meta")
    _meta(d)


HAR_RAW = "WISDM_ar_v1.1_raw.txt"


def _har_text(n: int = 200, bad: str | None = None) -> str:
    rows = [f"{1 + i // 100},Walking,{i * 50_000_000},0.5,9.8,-0.3;" for i in range(n)]
    if bad is not None:
        rows[n // 2] = bad
    return "\n".join(rows) + "\n"


def _har(d: Path, text: str | None = None) -> None:
    (d / HAR_RAW).write_text(_har_text() if text is None else text)
    _meta(d)


def _timit(base: Path, n: int = 800, skip: tuple[str, ...] = ()) -> None:
    for split, prefixes in (("tr", ("trx", "trs", "trn")), ("v", ("vx", "vs", "vn")), ("te", ("tex",))):
        for p in prefixes:
            if f"{p}0000.wav" not in skip:
                _wav(base / split / f"{p}0000.wav", _tone(n))


class _Evil:
    """A pickle whose loading would run a shell command (the marker file proves whether it ran)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tib_pickle() -> bytes:
    """68 bytes asking numpy's allow-listed _reconstruct for a 1 TiB array."""
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
            b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85U\x01b\x87R.")


def _short_object_array_pickle() -> bytes:
    """An object array whose state lists 3 items for a shape of 2**20: numpy itself would crash on it."""
    return pickle.dumps(np.array([1, 2, None], dtype=object), protocol=2).replace(
        b"K\x03\x85", b"J\x00\x00\x10\x00\x85")


def _setstate_tib_pickle() -> bytes:
    """A normal-looking array whose BUILD state claims 2**40 elements."""
    return pickle.dumps(np.zeros(3, np.uint8), protocol=2).replace(b"K\x03\x85", b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85")


def _structured_pickle() -> bytes:
    return pickle.dumps(np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), protocol=2)


def _ndarray_called_pickle() -> bytes:
    """REDUCE straight on numpy.ndarray((2**40,), 'u1'): the class must not be callable from a pickle."""
    return (b"\x80\x02cnumpy\nndarray\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85U\x02u1\x86R.")


def _tar(members: dict[str, bytes | None], links: dict[str, str] | None = None, dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    assert "Traceback" not in msg
    return msg


# =============================================================== table 1: readers (dlsys.data.check)

@dataclass
class Reader:
    id: str
    dataset: str
    setup: Callable[[Path], None]
    error: str | None          # regex of the one error line; None = must succeed
    warning: str | None = None
    forbid: str | None = None  # a file (relative to the data dir) that must never appear


def _truncate_idx(d):
    _mnist(d)
    p = d / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-100]))


def _gzip_garbage(d):
    _mnist(d)
    (d / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)


def _idx_is_dir(d):
    _mnist(d)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    (d / "t10k-labels-idx1-ubyte.gz").mkdir()


def _other_rate_stereo(d):
    _denoise(d)
    s = _tone(4000)
    sf.write(d / "test_02_x.wav", np.stack([s, s], 1), 8000)


def _empty_wav(d):
    _denoise(d)
    sf.write(d / "test_02_x.wav", np.zeros(0, np.float32), SR)


def _nan_wav(d):
    _denoise(d)
    x = np.zeros(100, np.float32)
    x[5] = np.nan
    sf.write(d / "test_02_x.wav", x, SR, subtype="FLOAT")


def _garbage_wav(d):
    _denoise(d)
    (d / "test_02_x.wav").write_bytes(b"RIFF" + os.urandom(64))


def _mismatched(d):
    _denoise(d)
    _wav(d / "train_dirty_male.wav", np.zeros(7000, np.float32))


def _denoise_bad_sr(d):
    _denoise(d)
    _meta(d, sr=-16000)


def _pickle_file(name: str, payload: Callable[[Path], bytes], base=_sevens):
    def setup(d):
        base(d)
        (d / name).write_bytes(payload(d))
    return setup


def _missing_sevens(d):
    _sevens(d)
    (d / "te7.pkl").unlink()


def _truncated_dataset_json(d):
    _mnist(d)
    (d / "dataset.json").write_text('{"source": "rea')


def _dataset_json_without_source(d):
    _mnist(d)
    (d / "dataset.json").write_text('{"name": "mnist"}')


def _angles_truncated(d):
    _sevens(d)
    (d / "angles.json").write_text('{"train": [1.0, 2')


def _speakers(d, train=None):
    dump_pickle(np.zeros((20, 300), np.float32) if train is None else train, d / "trs.pkl")
    dump_pickle(np.zeros((10, 300), np.float32), d / "tes.pkl")
    _meta(d, utterances_per_speaker=10)


def _timit_raw(d, **kw):
    _timit(d / "timit-homework", **kw)
    _meta(d)


READERS = [
    Reader("missing-dataset-dir", "mnist", lambda d: d.rmdir(), r"dataset directory not found; run `dvc repro acquire_"),
    Reader("missing-file", "sevens", _missing_sevens, r"te7\.pkl: file not found"),
    Reader("truncated-idx", "mnist", _truncate_idx, r"train-images-idx3-ubyte\.gz: truncated"),
    Reader("gzip-magic-then-garbage", "mnist", _gzip_garbage, r"train-labels-idx1-ubyte\.gz: corrupt or truncated gzip"),
    Reader("idx-file-is-a-folder", "mnist", _idx_is_dir, r"t10k-labels-idx1-ubyte\.gz: not a regular file"),
    Reader("truncated-dataset-json", "mnist", _truncated_dataset_json,
           r"dataset\.json: unreadable .*dvc repro -f acquire_mnist"),
    Reader("dataset-json-without-source", "mnist", _dataset_json_without_source, r"dataset\.json: no valid 'source'"),
    Reader("other-rate-stereo-wav", "denoise", _other_rate_stereo, None, warning=r"resampling to 16000"),
    Reader("empty-wav", "denoise", _empty_wav, r"test_02_x\.wav: empty audio file"),
    Reader("nan-samples", "denoise", _nan_wav, r"test_02_x\.wav: contains NaN"),
    Reader("garbage-wav", "denoise", _garbage_wav, r"test_02_x\.wav: not a readable audio file"),
    Reader("mismatched-clean-noisy", "denoise", _mismatched, r"train_clean_male\.wav.*same length"),
    Reader("negative-sample-rate", "denoise", _denoise_bad_sr, r"'sr' must be a positive integer"),
    Reader("wrong-shape-pickle", "sevens", _pickle_file("tr7.pkl", lambda d: pickle.dumps(np.zeros((3, 30, 30)), protocol=2)),
           r"tr7\.pkl: expected an N×28×28"),
    Reader("hostile-pickle", "sevens", _pickle_file("tr7.pkl", lambda d: pickle.dumps(_Evil(d / "PWNED"), protocol=2)),
           r"tr7\.pkl: refused", forbid="PWNED"),
    Reader("hostile-pickle-inside-a-dict", "sevens",
           _pickle_file("tr7.pkl", lambda d: pickle.dumps({"x": np.zeros(3), "t": _Evil(d / "PWNED")}, protocol=4)),
           r"tr7\.pkl: refused.*(posix|os)\.system", forbid="PWNED"),
    Reader("pickle-asks-1TiB-via-_reconstruct", "sevens", _pickle_file("tr7.pkl", lambda d: _tib_pickle()),
           r"tr7\.pkl: refused.*1\.049e\+06 MB\) is larger than the 1,024 MB cap"),
    Reader("pickle-state-claims-1TiB", "sevens", _pickle_file("tr7.pkl", lambda d: _setstate_tib_pickle()),
           r"tr7\.pkl: refused.*larger than the 1,024 MB cap"),
    Reader("pickle-object-array-short-state", "sevens", _pickle_file("tr7.pkl", lambda d: _short_object_array_pickle()),
           r"tr7\.pkl: refused: .*does not list exactly that many items"),
    Reader("pickle-calls-ndarray", "sevens", _pickle_file("tr7.pkl", lambda d: _ndarray_called_pickle()),
           r"tr7\.pkl: corrupt or truncated pickle .*not callable"),
    Reader("pickle-structured-dtype", "sevens", _pickle_file("tr7.pkl", lambda d: _structured_pickle()),
           r"tr7\.pkl: refused.*(structured|not a plain number)"),
    Reader("truncated-pickle", "sevens",
           _pickle_file("tr7.pkl", lambda d: pickle.dumps(np.zeros((3, 28, 28)), protocol=2)[:-20]),
           r"tr7\.pkl: corrupt or truncated pickle"),
    Reader("sevens-times-1e30", "sevens", lambda d: _sevens(d, np.full((3, 28, 28), 1e30)),
           r"tr7\.pkl: pixel values must lie in \[0, 1\] or \[0, 255\], found 1e\+30"),
    Reader("sevens-complex", "sevens", lambda d: _sevens(d, np.zeros((3, 28, 28), np.complex64)),
           r"tr7\.pkl: expected a real-valued N×28×28 array of images, got complex64"),
    Reader("sevens-negative", "sevens", lambda d: _sevens(d, -np.ones((3, 28, 28), np.float32)),
           r"tr7\.pkl: pixel values must lie in"),
    Reader("sevens-strings", "sevens", lambda d: _sevens(d, np.array(["a"] * 3)), r"tr7\.pkl: expected a real-valued"),
    Reader("sevens-angles-json-truncated", "sevens", _angles_truncated, r"angles\.json: unreadable"),
    Reader("cifar-labels-none", "cifar10", lambda d: _cifar(d, labels=[None] * 10),
           r"data_batch_1: 'labels' must be integers 0\.\.9, found None"),
    Reader("cifar-labels-strings", "cifar10", lambda d: _cifar(d, labels=["cat"] * 10), r"found 'cat'"),
    Reader("cifar-labels-ragged", "cifar10", lambda d: _cifar(d, labels=[[1, 2], [3]] + [0] * 8), r"found \[1, 2\]"),
    Reader("cifar-labels-1.7", "cifar10", lambda d: _cifar(d, labels=[1.7] * 10), r"found 1\.7"),
    Reader("cifar-labels-out-of-range", "cifar10", lambda d: _cifar(d, labels=[10] * 10), r"labels outside 0\.\.9"),
    Reader("cifar-labels-float-array", "cifar10", lambda d: _cifar(d, labels=np.zeros(10, np.float32)),
           r"'labels' must be a 1-D array of integers"),
    Reader("cifar-data-not-uint8", "cifar10", lambda d: _cifar(d, data=np.zeros((10, 3072), np.float64)),
           r"'data' must be a uint8 N×3072 array, got float64"),
    Reader("har-1e999", "har", lambda d: _har(d, _har_text(bad="1,Walking,5,1e999,9.8,0.1;")),
           r"WISDM_ar_v1\.1_raw\.txt: record 101 has a non-finite or out-of-range value"),
    Reader("har-raw-entry-is-a-folder", "har", lambda d: ((d / HAR_RAW).mkdir(), _meta(d)),
           r"WISDM_ar_v1\.1_raw\.txt: not a regular file"),
    Reader("har-no-records", "har", lambda d: _har(d, "garbage\n"), r"no well-formed 'user,activity"),
    Reader("speakers-not-a-matrix", "speakers", lambda d: _speakers(d, np.zeros(300, np.float32)),
           r"trs\.pkl: expected a matrix with a multiple of 10 rows"),
    Reader("speakers-complex", "speakers", lambda d: _speakers(d, np.zeros((20, 30), np.complex128)),
           r"trs\.pkl: expected a real-valued utterances × samples matrix"),
    Reader("timit-missing-noise-file", "timit_denoise", lambda d: _timit_raw(d, skip=("trn0000.wav",)),
           r"trn0000\.wav: missing \(the source/noise of trx0000\.wav\)"),
]


@pytest.mark.parametrize("case", READERS, ids=[c.id for c in READERS])
def test_reader(case: Reader, tmp_path, caplog):
    from dlsys.data.check import load

    raw = tmp_path / case.dataset
    raw.mkdir()
    case.setup(raw)
    before = _tree(raw)
    t0 = time.perf_counter()
    if case.error is None:
        load(case.dataset, raw)
    else:
        with pytest.raises(UserError) as exc:
            load(case.dataset, raw)
        assert re.search(case.error, _one_line(exc.value)), str(exc.value)
    assert time.perf_counter() - t0 < 10, "refused only after a long time (did it allocate first?)"
    if case.warning:
        assert re.search(case.warning, caplog.text), caplog.text
    if case.forbid:
        assert not (raw / case.forbid).exists(), "the pickle's payload ran"
    assert _tree(raw) == before, "a reader changed the data it read"


def test_check_cli_prints_one_line_and_no_traceback(tmp_path):
    """The stage runner's side: `python -m dlsys.data.check` turns the readers' errors into one line."""
    raw = tmp_path / "sevens"
    raw.mkdir()
    _pickle_file("tr7.pkl", lambda d: _tib_pickle())(raw)
    proc = subprocess.run([sys.executable, "-m", "dlsys.data.check", "sevens", "--raw-dir", str(raw)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(r"^error: .*tr7\.pkl: refused.*cap", errors[0]), proc.stderr


# =============================================================== the local HTTP server

class _Server:
    """Serves `routes`: path -> body bytes, or (status, headers, body), or a callable(handler)."""

    def __init__(self):
        self.routes: dict = {}
        self.requests: list[dict] = []
        routes, requests = self.routes, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                requests.append({"path": self.path, "range": self.headers.get("Range"),
                                 "if_range": self.headers.get("If-Range")})
                route = routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if callable(route):
                    return route(self)
                status, headers, body = route if isinstance(route, tuple) else (200, {}, route)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers and body is not None:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


# =============================================================== table 2: acquisition

SMALL = {"mnist": {"n_train": 60, "n_test": 20}, "denoise": {"train_seconds": 1.0, "test_seconds": 1.0}}


def _params(name: str, limits: dict | None = None, **over):
    from dlsys.core.params import Params

    group = {**DEFAULTS["data"][name], **SMALL.get(name, {}), **over}
    return Params({"seed": 0, "data": {"limits": {**DEFAULTS["data"]["limits"], **(limits or {})}, name: group}})


GOOD = b"previous good output"
AUDIO = ("denoise", "timit_denoise", "speakers", "speech_commands")


def _previous_good(root: Path, name: str) -> None:
    """What an earlier successful acquisition left: raw data, plots, audio, metrics (markers suffice)."""
    raw = root / "data/raw" / name
    raw.mkdir(parents=True)
    (raw / "GOOD").write_bytes(GOOD)
    (raw / "dataset.json").write_text(json.dumps({"name": name, "source": "synthetic"}))
    for folder in (root / "plots/data" / name, *([root / "audio/data" / name] if name in AUDIO else [])):
        folder.mkdir(parents=True)
        (folder / "GOOD").write_bytes(GOOD)
    (root / "metrics/data").mkdir(parents=True)
    (root / f"metrics/data/{name}.json").write_text(json.dumps({"data_source": "synthetic", "good": 1}))


def _tree(*paths: Path) -> dict[str, str]:
    out = {}
    for base in paths:
        items = [base] if base.is_file() else sorted(base.rglob("*")) if base.exists() else []
        for p in items:
            if p.is_file() and not p.is_symlink():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _outputs(root: Path, name: str) -> dict[str, str]:
    return _tree(root / "data/raw" / name, root / "plots/data" / name, root / "audio/data" / name,
                 root / f"metrics/data/{name}.json")


def _debris(root: Path, name: str) -> list[Path]:
    """Temporary files or folders of a run (atomic writes, resumable downloads) left behind."""
    left = []
    for parent in ("data/raw", "plots/data", "audio/data", "metrics/data", "timings/data"):
        folder = root / parent
        left += [p for p in folder.glob(f".{name}.*")] if folder.is_dir() else []
    cache = root / "data/cache" / name
    left += [p for p in cache.glob("*.part*")] if cache.is_dir() else []
    return left


def _ctx(name: str, params):
    import torch

    from dlsys.core.context import StageContext

    return StageContext(stage=f"acquire_{name}", params=params, device=torch.device("cpu"),
                        generator=torch.Generator().manual_seed(0), seed=0)


def _acquire(root: Path, name: str, params, monkeypatch, preview=None):
    from dlsys.tasks import datasets

    monkeypatch.chdir(root)
    if preview is not None:
        monkeypatch.setitem(datasets.PREVIEWS, name, preview)
    return datasets.run_acquire(_ctx(name, params))


@dataclass
class Acq:
    id: str
    dataset: str
    setup: Callable  # (external dir of the dataset, root, server) -> dict of data.<name> overrides
    error: str | None  # regex of the one-line error; None = must succeed (and replace the previous output)
    forbid: str | None = None  # a path (relative to root) a payload would create
    limits: dict = field(default_factory=dict)
    preview: Callable | None = None
    after: Callable | None = None  # (root, server) -> extra checks


def _real(**extra):
    return {"source": "real", **extra}


def _write_sevens_ext(ext: Path, train=None, raw: bytes | None = None) -> None:
    ext.mkdir(parents=True, exist_ok=True)
    dump_pickle(np.zeros((3, 28, 28), np.float32) if train is None else train, ext / "tr7.pkl")
    dump_pickle(np.zeros((2, 28, 28), np.float32), ext / "te7.pkl")
    if raw is not None:
        (ext / "tr7.pkl").write_bytes(raw)


def _sevens_hostile(ext, root, srv):
    _write_sevens_ext(ext, raw=pickle.dumps(_Evil(root / "PWNED"), protocol=2))
    return _real()


def _sevens_tib(ext, root, srv):
    _write_sevens_ext(ext, raw=_tib_pickle())
    return _real()


def _sevens_link_out(ext, root, srv):
    _write_sevens_ext(ext)
    (ext / "tr7.pkl").unlink()
    (ext / "tr7.pkl").symlink_to("/etc/hostname")
    return _real()


def _sevens_dangling_link(ext, root, srv):
    _write_sevens_ext(ext)
    (ext / "tr7.pkl").unlink()
    (ext / "tr7.pkl").symlink_to(root / "nowhere.pkl")
    return _real()


def _sevens_folder(ext, root, srv):
    _write_sevens_ext(ext)
    (ext / "tr7.pkl").unlink()
    (ext / "tr7.pkl").mkdir()
    return _real()


def _sevens_fifo(ext, root, srv):
    _write_sevens_ext(ext)
    (ext / "tr7.pkl").unlink()
    os.mkfifo(ext / "tr7.pkl")  # reading it would block forever: it must be refused before any read
    return _real()


def _sevens_external_is_link(ext, root, srv):
    elsewhere = root / "elsewhere"
    _write_sevens_ext(elsewhere)
    ext.parent.mkdir(parents=True, exist_ok=True)
    ext.symlink_to(elsewhere)
    return _real()


def _sevens_cap_lowered(ext, root, srv):
    _write_sevens_ext(ext, train=np.zeros((400, 28, 28), np.float64))  # 2.4 MB
    return _real()


def _timit_ext(ext, **kw):
    _timit(ext / "timit-homework", **kw)


def _timit_tr_links_out(ext, root, srv):
    _timit_ext(ext)
    outside = root / "outside_tr"
    (ext / "timit-homework/tr").rename(outside)
    (ext / "timit-homework/tr").symlink_to(outside)
    return _real()


def _timit_tr_loop(ext, root, srv):
    _timit_ext(ext)
    (ext / "timit-homework/tr/loop").symlink_to("..")
    return _real()


def _timit_tr_is_file(ext, root, srv):
    _timit_ext(ext)
    for p in (ext / "timit-homework/tr").iterdir():
        p.unlink()
    (ext / "timit-homework/tr").rmdir()
    (ext / "timit-homework/tr").write_bytes(b"not a folder")
    return _real()


def _timit_tr_empty(ext, root, srv):
    _timit_ext(ext)
    for p in (ext / "timit-homework/tr").iterdir():
        p.unlink()
    return _real()


def _timit_tr_incomplete(ext, root, srv):
    _timit_ext(ext, skip=("trs0000.wav",))
    return _real()


def _timit_garbage(ext, root, srv):
    _timit_ext(ext)
    (ext / "timit-homework/v/vn0000.wav").write_bytes(b"RIFF\x00\x00garbage")
    return _real()


def _timit_fifo(ext, root, srv):
    _timit_ext(ext)
    os.mkfifo(ext / "timit-homework/te/pipe.wav")
    return _real()


def _denoise_ext(ext, n=8000, clean=None):
    s = _tone(n) if clean is None else clean
    for name in DENOISE_NAMES:
        _wav(ext / name, s if ("clean" in name or "_s" in name) else np.clip(s + 0.05, -1, 1))


def _denoise_lengths(ext, root, srv):
    _denoise_ext(ext)
    _wav(ext / "test_01_s.wav", _tone(7000))
    return _real()


def _denoise_all_zero(ext, root, srv):
    _denoise_ext(ext, clean=np.zeros(8000, np.float32))
    return _real()


def _denoise_one_sample(ext, root, srv):
    _denoise_ext(ext, n=1)
    return _real()


def _denoise_missing(ext, root, srv):
    _denoise_ext(ext)
    (ext / "test_02_x.wav").unlink()
    return _real()


def _speakers_ext(ext, root, srv):
    ext.mkdir(parents=True)
    dump_pickle(np.zeros((20, 300), np.complex64), ext / "trs.pkl")
    dump_pickle(np.zeros((10, 300), np.float32), ext / "tes.pkl")
    return _real()


def _mnist_placed_folder(ext, root, srv):
    (ext / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    return _real()


def _mnist_placed_link(ext, root, srv):
    ext.mkdir(parents=True)
    (ext / "train-images-idx3-ubyte.gz").symlink_to("/etc/hostname")
    return _real()


def _mnist_placed_wrong(ext, root, srv):
    ext.mkdir(parents=True)
    (ext / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 100))
    return _real()


def _cifar_folder_labels(labels):
    def setup(ext, root, srv):
        _cifar(ext, labels=labels)
        (ext / "dataset.json").unlink()
        return _real()
    return setup


def _serve_har(archive: bytes, sha_pin: str | None = None):
    """Serve `archive` as the WISDM tarball; optionally pre-pin a SHA-256 for it."""
    def setup(ext, root, srv):
        from dlsys.data.registry import Download, get_spec

        srv.routes["/wisdm.tar.gz"] = archive
        spec = get_spec("har")
        _PATCHES.append((spec, "downloads", spec.downloads))
        spec.downloads = [Download(spec.downloads[0].filename, (srv.url + "/wisdm.tar.gz",))]
        if sha_pin is not None:
            (root / "data").mkdir(exist_ok=True)
            (root / "data/download-pins.json").write_text(json.dumps({f"har/{spec.downloads[0].filename}": sha_pin}))
        return _real()
    return setup


def _redirect_har(location_of):
    def setup(ext, root, srv):
        from dlsys.data.registry import Download, get_spec

        srv.routes["/wisdm.tar.gz"] = (302, {"Location": location_of(srv)}, b"")
        spec = get_spec("har")
        _PATCHES.append((spec, "downloads", spec.downloads))
        spec.downloads = [Download(spec.downloads[0].filename, (srv.url + "/wisdm.tar.gz",))]
        return _real()
    return setup


_PATCHES: list = []
GOOD_HAR = _tar({f"WISDM_ar_v1.1/{HAR_RAW}": _har_text().encode()})
OTHER_HAR = _tar({f"WISDM_ar_v1.1/{HAR_RAW}": _har_text(300).encode()})
INF_HAR = _tar({f"WISDM_ar_v1.1/{HAR_RAW}": _har_text(bad="1,Walking,5,1e999,9.8,0.1;").encode()})
TRAVERSAL_HAR = _tar({f"WISDM_ar_v1.1/{HAR_RAW}": _har_text().encode(), "../../PWNED": b"x"})
LINK_HAR = _tar({"x": b"x"}, links={f"WISDM_ar_v1.1/{HAR_RAW}": "/etc/hostname"})
FOLDER_HAR = _tar({"readme.txt": b"x"}, dirs=(f"WISDM_ar_v1.1/{HAR_RAW}",))


def _pins(root):
    f = root / "data/download-pins.json"
    return json.loads(f.read_text()) if f.exists() else {}


def _check_pinned(root, srv):
    assert _pins(root) == {f"har/WISDM_ar_latest.tar.gz": hashlib.sha256(GOOD_HAR).hexdigest()}


def _check_cache_emptied(root, srv):
    cache = root / "data/cache/har"
    assert not cache.exists() or not any(cache.iterdir()), "the invalid first download stayed in the cache"
    assert _pins(root) == {}, "an invalid download was pinned"


def _check_not_repinned(root, srv):
    assert _pins(root) == {f"har/WISDM_ar_latest.tar.gz": "0" * 64}


def _check_nothing_copied_from_outside(root, srv):
    assert not (root / "data/raw/timit_denoise/timit-homework").exists()


def _crashing_preview(data, plots, audio, source):
    from dlsys.core.errors import DataFormatError

    (plots / "half.png").write_bytes(b"half a figure")
    (audio / "half.wav").write_bytes(b"half a clip")
    raise DataFormatError("test_02_x.wav: the preview crashed half-way")


ACQUIRE = [
    Acq("hostile-course-pickle", "sevens", _sevens_hostile, r"tr7\.pkl: refused.*system", forbid="PWNED"),
    Acq("course-pickle-asks-1TiB", "sevens", _sevens_tib, r"tr7\.pkl: refused.*1,024 MB cap"),
    Acq("course-pickle-over-a-lowered-cap", "sevens", _sevens_cap_lowered, r"tr7\.pkl: refused.*larger than the 1 MB cap",
        limits={"max_array_mb": 1}),
    Acq("course-file-links-out", "sevens", _sevens_link_out, r"tr7\.pkl: is a symbolic link; copy the file itself"),
    Acq("course-file-dangling-link", "sevens", _sevens_dangling_link, r"tr7\.pkl: is a symbolic link"),
    Acq("course-file-is-a-folder", "sevens", _sevens_folder, r"tr7\.pkl: is a folder, expected a file"),
    Acq("course-file-is-a-fifo", "sevens", _sevens_fifo, r"tr7\.pkl: not a regular file \(a named pipe\)"),
    Acq("external-folder-is-a-link", "sevens", _sevens_external_is_link, r"data/external/sevens: is a symbolic link"),
    Acq("timit-tr-links-out", "timit_denoise", _timit_tr_links_out, r"timit-homework/tr: is a symbolic link",
        after=_check_nothing_copied_from_outside),
    Acq("timit-tr-loop-link", "timit_denoise", _timit_tr_loop, r"tr/loop: is a symbolic link"),
    Acq("timit-tr-is-a-file", "timit_denoise", _timit_tr_is_file, r"timit-homework/tr: is a file, expected a folder"),
    Acq("timit-tr-empty", "timit_denoise", _timit_tr_empty, r"tr: no trx\*\.wav mixtures found"),
    Acq("timit-tr-incomplete", "timit_denoise", _timit_tr_incomplete, r"trs0000\.wav: missing \(the source/noise"),
    Acq("timit-garbage-wav", "timit_denoise", _timit_garbage, r"vn0000\.wav: not a readable audio file"),
    Acq("timit-fifo-inside", "timit_denoise", _timit_fifo, r"pipe\.wav: not a regular file \(a named pipe\)"),
    Acq("denoise-lengths-differ", "denoise", _denoise_lengths, r"test_01_s\.wav.*(differ|same length)"),
    Acq("denoise-all-zero-recordings", "denoise", _denoise_all_zero, None),
    Acq("denoise-one-sample-recordings", "denoise", _denoise_one_sample, None),
    Acq("speakers-complex-pickle", "speakers", _speakers_ext, r"trs\.pkl: expected a real-valued"),
    Acq("mnist-placed-file-is-a-folder", "mnist", _mnist_placed_folder,
        r"train-images-idx3-ubyte\.gz: not a regular file \(a folder\)"),
    Acq("mnist-placed-file-is-a-link", "mnist", _mnist_placed_link, r"train-images-idx3-ubyte\.gz: is a symbolic link"),
    Acq("mnist-placed-file-not-published", "mnist", _mnist_placed_wrong, r"md5 mismatch.*not the published one"),
    Acq("cifar-folder-labels-1.7", "cifar10", _cifar_folder_labels([1.7] * 10), r"data_batch_1: 'labels'.*found 1\.7"),
    Acq("cifar-folder-labels-none", "cifar10", _cifar_folder_labels([None] * 10), r"found None"),
    Acq("preview-crashes", "denoise", lambda ext, root, srv: _denoise_ext(ext) or _real(), r"preview crashed",
        preview=_crashing_preview),
    Acq("har-first-download-pinned", "har", _serve_har(GOOD_HAR), None, after=_check_pinned),
    Acq("har-download-differs-from-pin", "har", _serve_har(GOOD_HAR, sha_pin="0" * 64),
        r"sha256 mismatch .*pinned on first use in data/download-pins\.json", after=_check_not_repinned),
    Acq("har-first-download-has-1e999", "har", _serve_har(INF_HAR),
        r"record 101 has a non-finite.*deleted the cached download", after=_check_cache_emptied),
    Acq("har-archive-path-traversal", "har", _serve_har(TRAVERSAL_HAR), r"cannot extract", forbid="PWNED",
        after=_check_cache_emptied),
    Acq("har-archive-link-out", "har", _serve_har(LINK_HAR), r"(cannot extract|has no WISDM_ar_v1\.1_raw\.txt)",
        after=_check_cache_emptied),
    Acq("har-raw-entry-is-a-folder", "har", _serve_har(FOLDER_HAR), r"archive has no WISDM_ar_v1\.1_raw\.txt",
        after=_check_cache_emptied),
    Acq("har-redirect-to-other-host", "har", _redirect_har(lambda s: f"http://localhost:{s.port}/x.tar.gz"),
        r"refused a redirect to http://localhost:\d+/x\.tar\.gz \(another host"),
    Acq("har-redirect-to-ftp", "har", _redirect_har(lambda s: "ftp://127.0.0.1/x.tar.gz"),
        r"refused a redirect to ftp://.*\(ftp scheme\)"),
    Acq("har-download-over-the-cap", "har", _serve_har(GOOD_HAR), r"more than the [\d.e+-]+ MB cap .*refused",
        limits={"max_download_mb": 0.0001}),
]


@pytest.mark.parametrize("case", ACQUIRE, ids=[c.id for c in ACQUIRE])
def test_acquire(case: Acq, tmp_path, monkeypatch, server):
    root = tmp_path / "repo"
    root.mkdir()
    name = case.dataset
    _previous_good(root, name)
    before = _outputs(root, name)
    try:
        overrides = case.setup(root / "data/external" / name, root, server) or {}
        params = _params(name, case.limits, **overrides)
        if case.error is None:
            meta = _acquire(root, name, params, monkeypatch, case.preview)
            assert meta["source"] == "real"
            after = _outputs(root, name)
            assert not any(p.endswith("GOOD") for p in after), "the previous output was not replaced as a whole"
            assert (root / "plots/data" / name).is_dir() and not list((root / "plots/data" / name).glob("*.wav"))
            metrics = json.loads((root / f"metrics/data/{name}.json").read_text())
            assert metrics["data_source"] == "real" and "seconds" not in json.dumps(metrics)
        else:
            with pytest.raises(UserError) as exc:
                _acquire(root, name, params, monkeypatch, case.preview)
            assert re.search(case.error, _one_line(exc.value)), str(exc.value)
            assert _outputs(root, name) == before, "the previous good output changed"
        assert _debris(root, name) == [], "a failed run left temporary files"
        if case.forbid:
            assert not list(root.rglob(case.forbid)) and not (tmp_path / case.forbid).exists(), "the payload ran"
        if case.after:
            case.after(root, server)
    finally:
        while _PATCHES:
            obj, attr, value = _PATCHES.pop()
            setattr(obj, attr, value)


def test_acquire_preview_crash_that_is_not_a_user_error_still_leaves_nothing(tmp_path, monkeypatch, server):
    """A bug in a preview is a traceback (a bug), but the half-drawn outputs never replace the good ones."""
    root = tmp_path / "repo"
    root.mkdir()
    _previous_good(root, "denoise")
    before = _outputs(root, "denoise")
    _denoise_ext(root / "data/external/denoise")

    def buggy(data, plots, audio, source):
        (plots / "half.png").write_bytes(b"half")
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        _acquire(root, "denoise", _params("denoise", source="real"), monkeypatch, buggy)
    assert _outputs(root, "denoise") == before and _debris(root, "denoise") == []


def _no_preview(data, plots, audio, source):
    (plots / "seen.txt").write_text(f"{type(data).__name__} from {source}")


def test_stale_temporaries_of_a_killed_run_are_removed_at_the_next_start(tmp_path, monkeypatch):
    from dlsys.tasks import datasets

    root = tmp_path / "repo"
    for rel in ("data/raw/.mnist.k3j2.tmp/train.gz", "data/raw/.mnist.old-4242/x", "plots/data/.mnist.ab.tmp/a.png",
                "audio/data/.mnist.cd.tmp/a.wav", "metrics/data/.mnist.json.x1.tmp", "data/raw/.mnistic.keep/x",
                "data/raw/.sevens.zz.tmp/x"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"debris")
    monkeypatch.chdir(root)
    monkeypatch.setitem(datasets.PREVIEWS, "mnist", _no_preview)
    ctx = _ctx("mnist", _params("mnist"))
    datasets.run_acquire(ctx)
    assert _debris(root, "mnist") == []
    assert (root / "data/raw/.mnistic.keep/x").exists(), "another dataset's name was matched"
    assert (root / "data/raw/.sevens.zz.tmp/x").exists(), "another dataset's run was cleaned up"
    meta = json.loads((root / "data/raw/mnist/dataset.json").read_text())
    assert "seconds" not in meta, "dataset.json must depend on the data only"
    assert ctx.timings["build_seconds"] >= 0 and "build_seconds" not in (root / "metrics/data/mnist.json").read_text()
    assert (root / "plots/data/mnist/seen.txt").read_text() == "MnistData from synthetic"


def test_snr_against_a_silent_reference_warns_instead_of_reporting_silently(caplog):
    import torch

    from dlsys.evaluation.snr import snr_db, snr_db_many

    x = _tone(800)
    assert "all-zero" not in caplog.text and np.isfinite(snr_db(x, x * 0.5))
    snr_db(np.zeros(800), x)
    assert "all-zero (silent) reference is undefined" in caplog.text
    caplog.clear()
    ref = torch.stack([torch.from_numpy(x), torch.zeros(800)])
    snr_db_many(ref, ref * 0.5)
    assert "1 of 2 references are all zero" in caplog.text


def test_dataset_json_is_a_pure_function_of_the_data(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        _acquire(root, "mnist", _params("mnist"), monkeypatch, _no_preview)
    assert (a / "data/raw/mnist/dataset.json").read_bytes() == (b / "data/raw/mnist/dataset.json").read_bytes()
    assert (a / "metrics/data/mnist.json").read_bytes() == (b / "metrics/data/mnist.json").read_bytes()


# =============================================================== table 3: downloads

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def _serve(srv, path="/f.bin", body=PAYLOAD, etag=None, ranges=True, drop_after=None, length=True):
    """A route that honours Range (and If-Range against `etag`), optionally cutting the body short."""
    def handle(h):
        start = 0
        rng, if_range = h.headers.get("Range"), h.headers.get("If-Range")
        if rng and ranges and (if_range is None or if_range == etag):
            start = int(rng.split("=")[1].split("-")[0])
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        if etag:
            h.send_header("ETag", etag)
        chunk = body[start:]
        if length:
            h.send_header("Content-Length", str(len(chunk)))
        h.end_headers()
        h.wfile.write(chunk if drop_after is None else chunk[:drop_after])
        h.close_connection = True
    srv.routes[path] = handle


@dataclass
class Dl:
    id: str
    run: Callable  # (server, cache dir, external dir) -> None; raises on failure
    error: str | None
    after: Callable | None = None  # (server, cache, external) -> extra checks


def _dl(srv, cache, ext, **kw):
    from dlsys.data.download import fetch
    from dlsys.data.registry import Download

    args = {"md5": MD5, **kw.pop("download", {})}
    dl = Download("f.bin", kw.pop("urls", (srv.url + "/f.bin",)), **args)
    return fetch(dl, external=ext, cache=cache, **kw)


def _stale_part(cache, data: bytes, state: dict | None = None):
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "f.bin.part").write_bytes(data)
    if state is not None:
        (cache / "f.bin.part.json").write_text(json.dumps(state))


def _garbage_prefix(srv, cache, ext):
    _serve(srv)
    _stale_part(cache, b"\xff" * 1000)  # no validator: only the whole-file checksum can catch it
    _dl(srv, cache, ext)


def _after_garbage(srv, cache, ext):
    assert (cache / "f.bin").read_bytes() == PAYLOAD
    assert [r["range"] for r in srv.requests] == ["bytes=1000-", None], "resumed, failed the checksum, restarted"


def _unchecked_part(srv, cache, ext):
    _serve(srv)
    _stale_part(cache, PAYLOAD[:5000])
    _dl(srv, cache, ext, download={"md5": None, "sha256": None})


def _after_unchecked(srv, cache, ext):
    assert (cache / "f.bin").read_bytes() == PAYLOAD and srv.requests[0]["range"] is None, "resumed unchecked bytes"


def _etag_changed(srv, cache, ext):
    _serve(srv, etag='"v2"')
    _stale_part(cache, b"\xee" * 5000, {"url": srv.url + "/f.bin", "etag": '"v1"'})
    _dl(srv, cache, ext, download={"md5": None, "sha256": None})


def _after_etag_changed(srv, cache, ext):
    assert (cache / "f.bin").read_bytes() == PAYLOAD
    assert srv.requests[0] == {"path": "/f.bin", "range": "bytes=5000-", "if_range": '"v1"'}


def _etag_same(srv, cache, ext):
    _serve(srv, etag='"v1"')
    _stale_part(cache, PAYLOAD[:5000], {"url": srv.url + "/f.bin", "etag": '"v1"'})
    _dl(srv, cache, ext, download={"md5": None, "sha256": None})


def _after_etag_same(srv, cache, ext):
    assert (cache / "f.bin").read_bytes() == PAYLOAD and len(srv.requests) == 1  # resumed from byte 5000


def _broken_then_resumed(srv, cache, ext):
    state = {"n": 0}
    _serve(srv, etag='"v1"')
    handle = srv.routes["/f.bin"]

    def first_breaks(h):
        state["n"] += 1
        if state["n"] == 1:
            _serve(srv, etag='"v1"', drop_after=len(PAYLOAD) // 2)
            srv.routes["/f.bin"](h)
            srv.routes["/f.bin"] = first_breaks
            return
        handle(h)
    srv.routes["/f.bin"] = first_breaks
    _dl(srv, cache, ext, download={"md5": None, "sha256": None})


def _after_resumed(srv, cache, ext):
    assert (cache / "f.bin").read_bytes() == PAYLOAD
    assert srv.requests[1]["range"] == f"bytes={len(PAYLOAD) // 2}-" and srv.requests[1]["if_range"] == '"v1"'


def _declared_size(srv, cache, ext):
    _serve(srv)
    _dl(srv, cache, ext, download={"md5": None, "size": 1000})


def _endless(srv, cache, ext):
    _serve(srv, length=False)
    _dl(srv, cache, ext, download={"md5": None}, max_bytes=50_000)


def _mismatch(srv, cache, ext):
    _serve(srv)
    _dl(srv, cache, ext, download={"md5": "0" * 32})


def _corrupt_cache(srv, cache, ext):
    _serve(srv)
    cache.mkdir(parents=True)
    (cache / "f.bin").write_bytes(b"rotten bits")
    _dl(srv, cache, ext)


def _cache_is_folder(srv, cache, ext):
    _serve(srv)
    (cache / "f.bin").mkdir(parents=True)
    _dl(srv, cache, ext)


def _after_redownload(srv, cache, ext):
    assert (cache / "f.bin").read_bytes() == PAYLOAD and len(srv.requests) == 1


def _redirect(location):
    def run(srv, cache, ext):
        _serve(srv, path="/real.bin")
        srv.routes["/f.bin"] = (302, {"Location": location(srv)}, b"")
        _dl(srv, cache, ext)
    return run


def _https_downgrade(srv, cache, ext):
    import urllib.request

    from dlsys.data.download import _SafeRedirects

    req = urllib.request.Request("https://example.org/f.bin")
    _SafeRedirects().redirect_request(req, None, 302, "Found", {}, "http://example.org/f.bin")


def _placed_folder(srv, cache, ext):
    (ext / "f.bin").mkdir(parents=True)
    _dl(srv, cache, ext)


def _placed_tampered(srv, cache, ext):
    ext.mkdir(parents=True)
    (ext / "f.bin").write_bytes(PAYLOAD[:-1] + b"\x00")
    _dl(srv, cache, ext)


def _offline(srv, cache, ext):
    _dl(srv, cache, ext, urls=("http://127.0.0.1:9/f.bin",))


DOWNLOADS = [
    Dl("stale-part-with-garbage-prefix", _garbage_prefix, None, _after_garbage),
    Dl("stale-part-without-validator-restarts", _unchecked_part, None, _after_unchecked),
    Dl("if-range-etag-changed-restarts", _etag_changed, None, _after_etag_changed),
    Dl("if-range-etag-same-resumes", _etag_same, None, _after_etag_same),
    Dl("broken-transfer-resumed-with-if-range", _broken_then_resumed, None, _after_resumed),
    Dl("larger-than-declared-size", _declared_size, r"102,400 bytes, more than the published size \(1,000 bytes\)"),
    Dl("endless-response-over-the-cap", _endless, r"more than the 0\.04768 MB cap .*refused"),
    Dl("checksum-mismatch", _mismatch, r"md5 mismatch \(expected 0{32}"),
    Dl("corrupt-cached-archive-redownloaded", _corrupt_cache, None, _after_redownload),
    Dl("cache-entry-is-a-folder", _cache_is_folder, None, _after_redownload),
    Dl("redirect-same-host-followed", _redirect(lambda s: "/real.bin"), None,
       lambda srv, cache, ext: (cache / "f.bin").read_bytes() == PAYLOAD or pytest.fail("not followed")),
    Dl("redirect-to-other-host", _redirect(lambda s: f"http://localhost:{s.port}/real.bin"),
       r"refused a redirect to http://localhost:\d+/real\.bin \(another host than 127\.0\.0\.1\)"),
    Dl("redirect-to-ftp", _redirect(lambda s: "ftp://127.0.0.1/real.bin"), r"refused a redirect to ftp://.*ftp scheme"),
    Dl("redirect-https-to-http", _https_downgrade, r"refused a redirect to http://example\.org/f\.bin \(https downgraded"),
    Dl("placed-file-is-a-folder", _placed_folder, r"f\.bin: not a regular file \(a folder\)"),
    Dl("placed-file-tampered", _placed_tampered, r"md5 mismatch.*not the published one"),
    Dl("offline", _offline, r"could not download f\.bin .*127\.0\.0\.1:9/f\.bin.*place it in"),
]


@pytest.mark.parametrize("case", DOWNLOADS, ids=[c.id for c in DOWNLOADS])
def test_download(case: Dl, tmp_path, server, caplog):
    cache, ext = tmp_path / "cache", tmp_path / "external"
    if case.error is None:
        case.run(server, cache, ext)
    else:
        with pytest.raises(DownloadError) as exc:
            case.run(server, cache, ext)
        assert re.search(case.error, _one_line(exc.value)), str(exc.value)
        assert not (cache / "f.bin").exists(), "a refused download was kept"
    left = [p.name for p in cache.glob("*.part*")] if cache.exists() else []
    assert left == [], f"partial files left: {left}"
    if case.after:
        case.after(server, cache, ext)
    if case.id.startswith(("corrupt-cached", "cache-entry")):
        assert "deleted it, downloading again" in caplog.text


# =============================================================== table 4: params

@dataclass
class Par:
    id: str
    params: str                # params.yaml text
    dvc: str | None            # dvc.yaml text beside it (None: no dvc.yaml, the key check is skipped)
    error: str | None
    call: Callable | None = None  # an accessor run on the loaded Params


DVC = """stages:
  train:
    cmd: python train.py ${item.opt}
    matrix:
      opt: [sgd, adam]
    params:
      - seed
      - svd.rank
      - opt.${item.opt}
  sweep:
    foreach: ${sweep.values}
    do:
      cmd: python sweep.py ${item}
      params:
        - sweep.lr
"""
GOOD_PARAMS = "seed: 0\nsvd:\n  rank: 8\nopt:\n  sgd: {lr: 0.1}\n  adam: {lr: 0.001}\nsweep:\n  values: [1, 2]\n  lr: 0.5\n"

PARAMS = [
    Par("all-keys-read", GOOD_PARAMS, DVC, None),
    Par("whole-file-listed-covers-all", GOOD_PARAMS + "anything: 1\n",
        DVC.replace("      - seed\n", "      - seed\n      - params.yaml:\n"), None),
    Par("unknown-key-svd-rnak", GOOD_PARAMS.replace("  rank: 8\n", "  rank: 8\n  rnak: 5\n"), DVC,
        r"unknown key 'svd\.rnak' \(did you mean 'svd\.rank'\?\): no stage in dvc\.yaml reads it"),
    Par("unknown-matrix-variant", GOOD_PARAMS.replace("  adam:", "  adma: {lr: 1}\n  adam:"), DVC,
        r"unknown key 'opt\.adma\.lr' \(did you mean 'opt\.adam\.lr'\?\)"),
    Par("unknown-top-level-group", GOOD_PARAMS + "speakr:\n  lr: 1\n", DVC, r"unknown key 'speakr\.lr'"),
    Par("many-unknown-keys-one-line", GOOD_PARAMS + "".join(f"x{i}: {i}\n" for i in range(9)), DVC,
        r"9 unknown keys 'x0', .*and 4 more"),
    Par("no-dvc-yaml-no-key-check", GOOD_PARAMS + "anything: 1\n", None, None),
    Par("seed-2-to-the-70", GOOD_PARAMS.replace("seed: 0", f"seed: {2**70}"), DVC,
        r"'seed' must be <= 9223372036854775807, got 1180591620717411303424"),
    Par("seed-negative", GOOD_PARAMS.replace("seed: 0", "seed: -1"), DVC, r"'seed' must be >= 0"),
    Par("seed-a-float", GOOD_PARAMS.replace("seed: 0", "seed: 1.5"), DVC, r"'seed' must be an integer"),
    Par("lr-zero", GOOD_PARAMS.replace("lr: 0.5", "lr: 0"), DVC, r"'sweep\.lr' must be > 0, got 0",
        call=lambda p: p.float("sweep.lr", gt=0)),
    Par("lr-nan", GOOD_PARAMS.replace("lr: 0.5", "lr: .nan"), DVC, r"'sweep\.lr' must be a finite number",
        call=lambda p: p.float("sweep.lr", gt=0)),
    Par("rank-not-below-size", GOOD_PARAMS.replace("rank: 8", "rank: 5000"), DVC, r"'svd\.rank' must be < 64",
        call=lambda p: p.int("svd.rank", gt=0, lt=64)),
    Par("not-yaml", "seed: [0\n", DVC, r"params\.yaml: not valid YAML"),
]


@pytest.mark.parametrize("case", PARAMS, ids=[c.id for c in PARAMS])
def test_params(case: Par, tmp_path):
    from dlsys.core.params import load_params

    (tmp_path / "params.yaml").write_text(case.params)
    if case.dvc is not None:
        (tmp_path / "dvc.yaml").write_text(case.dvc)
    before = _tree(tmp_path)

    def load():
        p = load_params(tmp_path / "params.yaml")
        if case.call:
            case.call(p)
        return p

    if case.error is None:
        load()
    else:
        with pytest.raises(UserError) as exc:
            load()
        assert re.search(case.error, _one_line(exc.value)), str(exc.value)
    assert _tree(tmp_path) == before


def test_params_check_derives_keys_from_the_real_dvc_yaml():
    """The repository's own params.yaml passes, and a typo beside a real key is caught with its neighbour."""
    from dlsys.core.params import check_known_keys, read_yaml

    from dlsys.core.params import known_keys

    data = read_yaml((ROOT / "params.yaml").read_text())
    check_known_keys(data, ROOT / "dvc.yaml")
    # a key that stages list one by one (not as a whole group), with a typo beside it
    from dlsys.core.params import _covers

    known = known_keys(yaml.safe_load((ROOT / "dvc.yaml").read_text()), data)
    listed = sorted(k for k in known if k.count(".") >= 1 and _lookup(data, k) is not None
                    and not isinstance(_lookup(data, k), dict)
                    and not any(_covers(g, ".".join(k.split(".")[:i])) for g in known for i in range(1, k.count(".") + 1)))
    assert listed, "no key is listed on its own in dvc.yaml"
    key = listed[0]
    *group, leaf = key.split(".")
    typo = leaf[0] + leaf[2] + leaf[1] + leaf[3:] if len(leaf) > 2 else leaf + "x"
    _set(data, ".".join(group), {**_lookup(data, ".".join(group)), typo: 1})
    with pytest.raises(UserError, match=re.escape(f"unknown key '{'.'.join(group)}.{typo}' (did you mean '{key}'?)")):
        check_known_keys(data, ROOT / "dvc.yaml")


def _lookup(data, dotted):
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


# =============================================================== the stage runner (subprocess)

def _set(data: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for part in path:
        data = data[part]
    data[last] = value


@pytest.mark.parametrize("key, value, message", [
    ("mnist.n_train", "many", "'data.mnist.n_train' must be an integer"),
    ("mnist.n_train", -5, "'data.mnist.n_train' must be >= 10"),
    ("mnist.source", "internet", "'data.mnist.source' must be one of synthetic, real"),
    ("mnist.scale", 1.0, "'data.mnist.scale' must be a list"),
    ("limits.max_array_mb", 0, "'data.limits.max_array_mb' must be > 0"),
    ("limits.max_download_mb", float("nan"), "'data.limits.max_download_mb' must be a finite number"),
])
def test_bad_param_fails_at_start_naming_the_key(tmp_path, monkeypatch, key, value, message):
    root = tmp_path / "repo"
    root.mkdir()
    _previous_good(root, "mnist")
    before = _outputs(root, "mnist")
    from dlsys.core.params import Params

    params = _params("mnist")
    data = params.as_dict()
    _set(data["data"], key, value)
    t0 = time.perf_counter()
    with pytest.raises(UserError) as exc:
        _acquire(root, "mnist", Params(data), monkeypatch)
    assert message in _one_line(exc.value)
    assert time.perf_counter() - t0 < 10, "the bad param was found only after the work"
    assert _outputs(root, "mnist") == before and _debris(root, "mnist") == []


@pytest.mark.parametrize("key, value, message", [
    ("seed", 2**70, "'seed' must be <= 9223372036854775807, got 1180591620717411303424"),
    ("sed", 0, "unknown key 'sed' (did you mean 'seed'?)"),
])
def test_stage_prints_one_line_for_a_bad_params_file(tmp_path, key, value, message):
    """The acquisition stage as DVC runs it: one error line, no traceback, nothing written."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    _set(data, key, value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "dvc.yaml").write_bytes((ROOT / "dvc.yaml").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "stages/acquire.py"), "mnist"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvc.yaml", "params.yaml"], "something was written"


@pytest.mark.slow
def test_stage_killed_mid_write_leaves_no_partial_output_and_rerun_succeeds(repo_copy):
    repo_copy.set_params({"data.mnist.n_train": 20000, "data.mnist.n_test": 100})
    proc = subprocess.Popen([sys.executable, "stages/acquire.py", "mnist"], cwd=repo_copy.path,
                            env=repo_copy.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw_root = repo_copy.path / "data/raw"
    deadline = time.time() + 120
    # kill it while it is writing into its temporary directory
    while time.time() < deadline and not (raw_root.exists() and any(raw_root.glob(".mnist.*"))):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (raw_root / "mnist").exists(), "a killed stage must not leave a half-written dataset"
    assert list(raw_root.glob(".mnist.*")), "the kill came too late to leave a temporary folder"
    repo_copy.set_params({"data.mnist.n_train": 60, "data.mnist.n_test": 20})
    repo_copy.dvc("repro", "acquire_mnist")
    files = sorted(p.name for p in (raw_root / "mnist").iterdir())
    assert "dataset.json" in files and len(files) == 5
    assert not list(raw_root.glob(".mnist.*")), "the killed run's temporary folder was not removed"


@pytest.mark.slow
def test_diverging_run_is_recorded_and_stage_completes(repo_copy):
    repo_copy.set_params({"data.mnist.n_train": 200, "data.mnist.n_test": 50,
                          "mnist.init_study.epochs": 3, "mnist.init_study.sgd.lr": 1.0e30,
                          "mnist.init_study.hidden": [16, 16, 16, 16, 16]})
    repo_copy.stage("stages/acquire.py", "mnist")
    proc = repo_copy.stage("stages/mnist_init_study.py", "sgd", check=False)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((repo_copy.path / "metrics/mnist/init_study_sgd.json").read_text())
    assert "diverged" in json.dumps(metrics)
    flags = [v for v in _walk(metrics) if isinstance(v, dict) and "diverged" in v]
    assert any(f["diverged"] is True for f in flags), metrics


def _walk(obj):
    yield obj
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
