"""Checksum-verified, resumable, atomic downloads into the download cache (data/cache/<name>/).

A file the user already placed in data/external/<name>/ is used instead of downloading. A transfer
that breaks off is resumed with an HTTP Range request on the next attempt; when every attempt and
mirror fails, or the checksum does not match, the partial file is deleted: nothing is left behind.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from dlsys.core.errors import DownloadError, DataFormatError

log = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 10.0
ATTEMPTS = 3
BACKOFF_S = 0.5


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise DownloadError if `path` does not match the published checksum(s)."""
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = file_digest(path, algo)
            if got.lower() != want.lower():
                raise DownloadError(f"{path}: {algo} mismatch (expected {want}, got {got})")


def fetch(dl, external: Path, cache: Path, attempts: int = ATTEMPTS, timeout: float = TIMEOUT_S) -> Path:
    """Return a verified local copy of Download `dl`: from `external`, the cache, or its URLs."""
    placed = Path(external) / dl.filename
    if placed.exists():
        try:
            verify(placed, dl.md5, dl.sha256)
        except DownloadError as exc:
            raise DownloadError(f"{exc}; the file you placed in {external}/ is not the published one") from None
        log.info("using %s (placed by the user)", placed)
        return placed
    target = Path(cache) / dl.filename
    if target.exists():
        try:
            verify(target, dl.md5, dl.sha256)
            return target
        except DownloadError:
            log.warning("%s: cached copy fails its checksum; downloading again", target)
            target.unlink()
    errors = []
    for url in dl.urls:
        try:
            download_url(url, target, md5=dl.md5, sha256=dl.sha256, attempts=attempts, timeout=timeout)
            return target
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError(
        f"could not download {dl.filename} ({'; '.join(errors)}). Without network access, download it "
        f"from {dl.urls[0]} on another machine and place it in {external}/")


def download_url(url: str, target: Path, md5: str | None = None, sha256: str | None = None,
                 attempts: int = ATTEMPTS, timeout: float = TIMEOUT_S) -> Path:
    """Download `url` to `target` atomically, resuming a broken transfer on each retry."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    last_error: Exception | None = None
    try:
        for attempt in range(1, attempts + 1):
            try:
                _transfer(url, part, timeout)
                verify(part, md5, sha256)
                os.replace(part, target)
                return target
            except DownloadError:
                raise  # checksum mismatch: retrying the same bytes will not help
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
        if part.exists():
            part.unlink()


class _Incomplete(Exception):
    """The server closed the connection before sending every byte."""


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    return f"{type(exc).__name__}: {exc}" if exc else "failed"


def _transfer(url: str, part: Path, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "dlsys/0.1"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        status = getattr(resp, "status", 200)
        if have and status != 206:
            have = 0  # server ignored the Range request: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                         desc=part.name.removesuffix(".part"), leave=False) as bar:
            got = have
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                got += len(block)
                bar.update(len(block))
    if total is not None and got < total:
        raise _Incomplete(f"connection closed after {got} of {total} bytes")


def extract_tar(archive: Path, dest: Path, members_prefix: str | None = None) -> None:
    """Extract a (gzipped) tarball safely: the 'data' filter refuses absolute paths, links out, devices."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            if members_prefix is not None:
                members = [m for m in members if m.name.startswith(members_prefix)]
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataFormatError(f"{archive}: cannot extract ({exc})") from None
