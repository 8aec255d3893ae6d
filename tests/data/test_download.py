"""Download path against a local HTTP server: checksum, resume after a broken transfer, atomicity."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from dlsys.core.errors import DownloadError
from dlsys.data.download import download_url, fetch
from dlsys.data.registry import Download

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file.bin; with `drop_first`, the first response stops half-way."""

    state: dict = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        st = self.state
        st["requests"].append(self.headers.get("Range"))
        if self.path != "/file.bin":
            self.send_response(404)
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and st.get("ranges", True):
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if st.get("drop_first") and len(st["requests"]) == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    state = {"requests": []}
    handler = type("H", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    httpd.server_close()


MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_verifies_and_writes_atomically(server, tmp_path):
    url, state = server
    out = download_url(f"{url}/file.bin", tmp_path / "f.bin", md5=MD5)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_interrupted_transfer_is_resumed_with_range(server, tmp_path):
    url, state = server
    state["drop_first"] = True
    out = download_url(f"{url}/file.bin", tmp_path / "f.bin", md5=MD5, attempts=3)
    assert out.read_bytes() == PAYLOAD
    assert state["requests"][0] is None
    assert state["requests"][1] == f"bytes={len(PAYLOAD) // 2}-"  # resumed, not restarted


def test_resume_restarts_when_server_ignores_range(server, tmp_path):
    url, state = server
    state["drop_first"] = True
    state["ranges"] = False
    out = download_url(f"{url}/file.bin", tmp_path / "f.bin", md5=MD5, attempts=3)
    assert out.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="md5 mismatch"):
        download_url(f"{url}/file.bin", tmp_path / "f.bin", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_failed_download_leaves_nothing_and_names_manual_route(server, tmp_path):
    url, state = server
    dl = Download("file.bin", (f"{url}/missing.bin",), md5=MD5)
    with pytest.raises(DownloadError) as exc:
        fetch(dl, external=tmp_path / "external", cache=tmp_path / "cache")
    msg = str(exc.value)
    assert "missing.bin" in msg and "external" in msg
    assert not any((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def test_offline_error_is_fast_and_names_url(tmp_path):
    import time

    dl = Download("x.tar.gz", ("http://127.0.0.1:9/x.tar.gz",))  # discard port: connection refused
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:9/x\.tar\.gz"):
        fetch(dl, external=tmp_path / "ext", cache=tmp_path / "cache")
    assert time.perf_counter() - t0 < 5


def test_mirror_fallback_and_cache_reuse(server, tmp_path):
    url, state = server
    dl = Download("file.bin", (f"{url}/missing.bin", f"{url}/file.bin"), md5=MD5)
    first = fetch(dl, external=tmp_path / "ext", cache=tmp_path / "cache")
    assert first.read_bytes() == PAYLOAD
    n = len(state["requests"])
    again = fetch(dl, external=tmp_path / "ext", cache=tmp_path / "cache")
    assert again == first and len(state["requests"]) == n  # served from the verified cache


def test_user_placed_file_is_used_and_verified(tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "file.bin").write_bytes(PAYLOAD)
    dl = Download("file.bin", ("http://127.0.0.1:9/file.bin",), md5=MD5)
    assert fetch(dl, external=ext, cache=tmp_path / "cache") == ext / "file.bin"
    (ext / "file.bin").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="not the published one"):
        fetch(dl, external=ext, cache=tmp_path / "cache")
