"""Open a local HTML page in headless Chromium and report what a person would see go wrong.

Talks the DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out, NUL-separated JSON), so
it needs only the `chromium` binary: no driver, no websocket library. Every host name resolves to
nothing, so a page that would fetch from the internet fails here exactly as it does offline.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Debian/Ubuntu install it as `chromium` (bookworm) or `chromium-browser`.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--remote-debugging-pipe"]


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)      # uncaught exceptions, console.error, failed loads
    warnings: list[str] = field(default_factory=list)
    value: object = None                                  # the result of `probe` once it settled


class _Pipe:
    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int):
        self.proc, self.w, self.r = proc, to_browser, from_browser
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for m in self._read(deadline):
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.events += self._read(deadline, block_once=True)

    def _read(self, deadline: float, block_once: bool = False) -> list[dict]:
        out: list[dict] = []
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                if block_once:
                    return out
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], min(left, 0.2))
            if not ready:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"chromium exited ({self.proc.returncode})")
                if block_once:
                    return out
                continue
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        *msgs, self.buf = self.buf.split(b"\0")
        return out + [json.loads(m) for m in msgs if m]


def _describe(event: dict) -> tuple[str, str] | None:
    """(level, text) for the events that matter, else None."""
    method, p = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        return "error", (d.get("exception", {}).get("description") or d.get("text", "exception")).splitlines()[0]
    if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        return ("warning" if p["type"] == "warning" else "error"), text
    if method == "Log.entryAdded":
        e = p.get("entry", {})
        if e.get("level") in ("error", "warning"):
            return e["level"], f"{e.get('text', '')} {e.get('url', '')}".strip()
    return None


def open_page(path: Path, probe: str, settle: float = 1.0, timeout: float = 60.0) -> PageReport:
    """Load `path`, wait until the JavaScript expression `probe` gives the same value for `settle`
    seconds (or `timeout` passes), and return the errors, warnings and the probe's last value."""
    if not CHROMIUM:
        raise FileNotFoundError("chromium not found")
    to_r, to_w = os.pipe()      # we write, the browser reads on its fd 3
    from_r, from_w = os.pipe()  # the browser writes on its fd 4, we read
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:

        def fds():  # runs in the child: place the pipe ends where Chromium expects them
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=fds, pass_fds=(3, 4))  # kept open after fds() ran
        os.close(to_r)
        os.close(from_w)
        pipe = _Pipe(proc, to_w, from_r)
        try:
            targets = pipe.send("Target.getTargets")["targetInfos"]
            page = next(t["targetId"] for t in targets if t["type"] == "page")
            session = pipe.send("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            deadline = time.monotonic() + timeout
            value, since = object(), time.monotonic()
            while time.monotonic() < deadline:
                pipe.pump(0.25)
                now = pipe.send("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                                session=session).get("result", {}).get("value")
                if now != value:
                    value, since = now, time.monotonic()
                elif time.monotonic() - since >= settle:
                    break
            report = PageReport(value=value)
            for event in pipe.events:
                found = _describe(event)
                if found:
                    (report.errors if found[0] == "error" else report.warnings).append(found[1])
            return report
        finally:
            try:
                pipe.send("Browser.close", timeout=5)
            except (RuntimeError, TimeoutError, OSError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(to_w)
            os.close(from_r)
