"""Checksum-verified, resumable, atomic downloads into the download cache (data/cache/<name>/).

A file the user already placed in data/external/<name>/ is used instead of downloading (after the same
checks). What this module promises:
- every file is verified against its published checksum, or against the SHA-256 pinned on first use
  (data/download-pins.json) when none is published; a declared size and a size cap are enforced while
  the bytes arrive, so an endless or oversized response is cut off;
- a transfer that breaks off is resumed only when the result can be checked: with `If-Range` and the
  ETag/Last-Modified the server sent, or when a whole-file checksum will verify the result (a resumed
  file that then fails it is downloaded once more from the start); otherwise it restarts;
- redirects that downgrade https, leave http(s) or go to another host are refused;
- a cached copy that fails its checksum is deleted with a message and downloaded again; when every
  attempt and mirror fails, the partial file is deleted: nothing is left behind.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from dlsys.core.errors import DataFormatError, DownloadError

log = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 10.0
ATTEMPTS = 3
BACKOFF_S = 0.5


class ChecksumMismatch(DownloadError):
    """The bytes are not the published (or pinned) file."""


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, md5: str | None = None, sha256: str | None = None, size: int | None = None,
           pinned: bool = False) -> None:
    """Raise ChecksumMismatch if `path` does not match the published size and checksum(s)."""
    if size is not None and path.stat().st_size != size:
        raise ChecksumMismatch(f"{path}: {path.stat().st_size} bytes, the published file has {size}")
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = file_digest(path, algo)
            if got.lower() != want.lower():
                where = ("the SHA-256 pinned on first use in data/download-pins.json; if the publisher "
                         "really changed the file, delete its entry there") if pinned and algo == "sha256" \
                    else "the published checksum"
                raise ChecksumMismatch(f"{path}: {algo} mismatch (expected {want}, got {got}; {where})")


def fetch(dl, external: Path, cache: Path, attempts: int = ATTEMPTS, timeout: float = TIMEOUT_S,
          max_bytes: int | None = None, pinned_sha256: str | None = None) -> Path:
    """Return a verified local copy of Download `dl`: from `external`, the cache, or its URLs.

    `pinned_sha256` is the hash recorded on first use for a download with no published checksum.
    """
    sha256 = dl.sha256 or pinned_sha256
    pinned = pinned_sha256 is not None and not dl.sha256
    placed = Path(external) / dl.filename
    if os.path.lexists(placed):
        mode = os.lstat(placed).st_mode
        if stat.S_ISLNK(mode):
            raise DownloadError(f"{placed}: is a symbolic link; place the file itself in {external}/ "
                                f"(links are not followed)")
        if not stat.S_ISREG(mode):
            raise DownloadError(f"{placed}: not a regular file ({'a folder' if stat.S_ISDIR(mode) else 'special'}); "
                                f"place the downloaded {dl.filename} itself in {external}/")
        try:
            verify(placed, dl.md5, sha256, dl.size, pinned=pinned)
        except DownloadError as exc:
            raise DownloadError(f"{exc}; the file you placed in {external}/ is not the published one") from None
        log.info("using %s (placed by the user)", placed)
        return placed
    target = Path(cache) / dl.filename
    if os.path.lexists(target):
        try:
            if target.is_symlink() or not target.is_file():
                raise DownloadError(f"{target}: not a regular file")
            verify(target, dl.md5, sha256, dl.size, pinned=pinned)
            return target
        except DownloadError as exc:
            log.warning("%s: the cached copy is corrupt (%s); deleted it, downloading again", target, exc)
            _remove(target)
    errors = []
    for url in dl.urls:
        try:
            download_url(url, target, md5=dl.md5, sha256=sha256, size=dl.size, attempts=attempts, timeout=timeout,
                         max_bytes=max_bytes, pinned=pinned)
            return target
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError(
        f"could not download {dl.filename} ({'; '.join(errors)}). Without network access, download it "
        f"from {dl.urls[0]} on another machine and place it in {external}/")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def download_url(url: str, target: Path, md5: str | None = None, sha256: str | None = None,
                 size: int | None = None, attempts: int = ATTEMPTS, timeout: float = TIMEOUT_S,
                 max_bytes: int | None = None, pinned: bool = False) -> Path:
    """Download `url` to `target` atomically, resuming a broken transfer on each retry when it is safe."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    state = target.with_name(target.name + ".part.json")  # url and validators of the partial file
    cap = min(c for c in (size, max_bytes, float("inf")) if c is not None)
    checksummed = bool(md5 or sha256)
    restarted = False
    last_error: Exception | None = None
    try:
        attempt = 0
        while attempt < attempts:
            attempt += 1
            resumed = False
            try:
                resumed = _transfer(url, part, state, timeout, cap, checksummed, declared=size)
                verify(part, md5, sha256, size, pinned=pinned)
                os.replace(part, target)
                return target
            except ChecksumMismatch:
                if resumed and not restarted:
                    # The kept prefix may be stale bytes of another file: one fresh transfer from the start.
                    log.warning("%s: the resumed download fails its checksum; downloading it again from the start",
                                url)
                    _discard(part, state)
                    restarted = True
                    attempt -= 1  # the fresh transfer does not count against the retries
                    continue
                raise  # the same bytes again will not help
            except DownloadError:
                raise  # refused (size, redirect): retrying will not help
            except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException, _Incomplete) as exc:
                last_error = exc
                if isinstance(exc, urllib.error.HTTPError) and exc.code in (403, 404, 410):
                    break  # permanent
                if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
                    reason = getattr(exc, "reason", None)
                    if isinstance(reason, OSError) and not isinstance(reason, TimeoutError) \
                            and "timed out" not in str(reason) and not part.exists():
                        break  # unreachable host / no network: fail fast, no retries
                log.warning("%s: attempt %d/%d failed (%s)", url, attempt, attempts, exc)
                time.sleep(BACKOFF_S * attempt)
        raise DownloadError(f"{url}: {_describe(last_error)}")
    finally:
        # Anything still partial after we give up (or after a mismatch) is removed.
        _discard(part, state)


def _discard(part: Path, state: Path) -> None:
    for p in (part, state):
        if os.path.lexists(p):
            _remove(p)


class _Incomplete(Exception):
    """The server closed the connection before sending every byte."""


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    return f"{type(exc).__name__}: {exc}" if exc else "failed"


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only within the same host, over http(s), never from https down to http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        reason = None
        if new.scheme not in ("http", "https"):
            reason = f"{new.scheme or 'no'} scheme"
        elif old.scheme == "https" and new.scheme != "https":
            reason = "https downgraded to http"
        elif (new.hostname or "").lower() != (old.hostname or "").lower():
            reason = f"another host than {old.hostname}"
        if reason:
            raise DownloadError(f"{req.full_url}: refused a redirect to {newurl} ({reason})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirects)


def _validator(state: Path, url: str) -> str | None:
    """The ETag (strong) or Last-Modified the server sent with the partial file's first bytes."""
    try:
        saved = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("url") != url:
        return None
    etag = saved.get("etag")
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return etag
    modified = saved.get("last_modified")
    return modified if isinstance(modified, str) and modified else None


def _transfer(url: str, part: Path, state: Path, timeout: float, cap: float, checksummed: bool,
              declared: int | None = None) -> bool:
    """Fetch `url` into `part` (resuming when safe); returns whether earlier bytes were kept."""
    if os.path.lexists(part) and (part.is_symlink() or not part.is_file()):
        _discard(part, state)
    have = part.stat().st_size if part.exists() else 0
    validator = _validator(state, url) if have else None
    if have and validator is None and not checksummed:
        log.info("%s: partial download cannot be checked (no ETag, no checksum); starting over", part)
        _discard(part, state)
        have = 0
    req = urllib.request.Request(url, headers={"User-Agent": "dlsys/0.1"})
    if have:
        req.add_header("Range", f"bytes={have}-")
        if validator is not None:
            req.add_header("If-Range", validator)
    with _OPENER.open(req, timeout=timeout) as resp:
        status = getattr(resp, "status", 200)
        if have and status == 206:
            start = _range_start(resp.headers.get("Content-Range"))
            if start != have:
                _discard(part, state)
                raise _Incomplete(f"server resumed at byte {start}, not {have}; starting over")
        elif have:
            have = 0  # the server ignored the Range, or If-Range says the file changed: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else None
        if total is not None and total > cap:
            raise DownloadError(f"{url}: the server sends {total:,} bytes, more than "
                                f"{_cap_name(cap, declared)}; refused")
        if not have:
            state.write_text(json.dumps({"url": url, "etag": resp.headers.get("ETag"),
                                         "last_modified": resp.headers.get("Last-Modified")}))
        with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                         desc=part.name.removesuffix(".part"), leave=False) as bar:
            got = have
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                got += len(block)
                if got > cap:
                    raise DownloadError(f"{url}: more than {_cap_name(cap, declared)} received; refused")
                f.write(block)
                bar.update(len(block))
    if total is not None and got < total:
        raise _Incomplete(f"connection closed after {got} of {total} bytes")
    return have > 0


def _range_start(content_range: str | None) -> int | None:
    try:
        return int(content_range.split()[1].split("-")[0])  # "bytes 100-199/200"
    except (AttributeError, IndexError, ValueError):
        return None


def _cap_name(cap: float, declared: int | None) -> str:
    if declared is not None and cap == declared:
        return f"the published size ({declared:,} bytes)"
    return f"the {cap / 2**20:.4g} MB cap (params.yaml: data.limits.max_download_mb)"


def extract_tar(archive: Path, dest: Path, members_prefix: str | None = None) -> None:
    """Extract a (gzipped) tarball safely: the 'data' filter refuses absolute paths, links out, devices."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            if members_prefix is not None:
                members = [m for m in members if m.name.startswith(members_prefix)]
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataFormatError(f"{archive}: cannot extract ({exc})") from None
