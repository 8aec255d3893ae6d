"""The stage runner: logging set-up, params, and one-line errors for expected problems."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Callable

from dlsys.core.errors import UserError

log = logging.getLogger("dlsys")


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)


def run_stage(main: Callable[[], None], name: str | None = None) -> None:
    """Run a stage's main(); user errors exit with status 2 and a single line on stderr."""
    setup_logging()
    label = name or getattr(main, "__module__", "stage")
    t0 = time.perf_counter()
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: no partial outputs were kept", file=sys.stderr)
        sys.exit(130)
    seconds = time.perf_counter() - t0
    log.info("%s finished in %.1f s", label, seconds)
    record_timing(label, seconds)


def record_timing(label: str, seconds: float, extra: dict | None = None) -> None:
    """With DLSYS_TIMINGS=<file>, append this stage's wall time (bench/bench_pipeline.py and
    bench/gpu_check.py read it); `extra` adds the device and its peak memory."""
    path = os.environ.get("DLSYS_TIMINGS")
    if not path:
        return
    entry = {"stage": " ".join([label, *sys.argv[1:]]), "script": sys.argv[0], "seconds": round(seconds, 2),
             "unix_time": round(time.time(), 1), **(extra or {})}
    with open(path, "a") as f:  # one short line per stage: appends are atomic enough
        f.write(json.dumps(entry) + "\n")
