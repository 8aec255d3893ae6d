"""Pipeline benchmark: cold `dvc repro` per-stage times, no-op `dvc repro` time, one-param re-run.

Runs in a fresh `git clone` of this repository (no data, no DVC cache), with this venv's tools:

    python bench/bench_pipeline.py                 # full cold run (~the whole pipeline's time)
    python bench/bench_pipeline.py --stages acquire_mnist acquire_sevens   # a subset, for a quick check

Writes bench/results/pipeline_<device>.json and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="*", default=[], help="only these stages (default: all)")
    ap.add_argument("--param", default="mnist.svd.rank=10", help="the one param changed for the re-run check")
    args = ap.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        timings = Path(tmp) / "timings.jsonl"
        env = dict(os.environ, DLSYS_TIMINGS=str(timings), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
                   PYTHONPATH=str(clone / "src"))
        dvc = str(BIN / "dvc")
        cold, out = run([dvc, "repro", *args.stages], clone, env)
        stages_run = re.findall(r"Running stage '([^']+)'", out)
        noop, out2 = run([dvc, "repro", *args.stages], clone, env)
        key, value = args.param.split("=", 1)
        changed, out3 = run([dvc, "exp", "run", "-S", args.param, *args.stages], clone, env)
        rerun = re.findall(r"Running stage '([^']+)'", out3)
        per_stage = [json.loads(line) for line in timings.read_text().splitlines()] if timings.exists() else []
    # DVC runs stages in order: pair the stage names with the timing lines of the cold run.
    cold_times = per_stage[: len(stages_run)]
    result = {
        "device": device, "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cold_repro_seconds": round(cold, 1),
        "noop_repro_seconds": round(noop, 2),
        "noop_ran_stages": re.findall(r"Running stage '([^']+)'", out2),
        "param_change": args.param, "param_change_seconds": round(changed, 1), "param_change_reran": rerun,
        "stages": [{"stage": name, "seconds": t["seconds"]} for name, t in zip(stages_run, cold_times)],
    }
    out_path = ROOT / "bench" / "results" / f"pipeline_{device}.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"cold dvc repro: {cold / 60:.1f} min over {len(stages_run)} stages; no-op repro: {noop:.2f} s; "
          f"changing {args.param} re-ran {rerun} in {changed:.1f} s")
    for row in sorted(result["stages"], key=lambda r: -r["seconds"]):
        print(f"  {row['stage']:<32} {row['seconds']:8.1f} s")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
