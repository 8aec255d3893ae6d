"""Real-data results kept in git: `results/real/` holds the metrics and plots of the last real-data run of
each family, beside the synthetic defaults in `metrics/` and `plots/`.

    python -m dlsys.reporting.real_results --from <checkout that ran it> --family mnist \\
        --command "make repro-real (mnist stages)" --wall-seconds 4200 --data "kit: MNIST .gz, 60k/10k" --datasets mnist

copies `metrics/<family>/`, `plots/<family>/` and the metrics of the datasets the family used
(`metrics/data/<name>.json`, named by --datasets) into `results/real/` in the same layout, and records the run (command, wall
time, data, the checkout's git commit) in `results/real/runs.json`. A metrics file whose `data_source`
is not real data is refused, so nothing synthetic lands there by mistake.

Compare a later run against them with `dvc metrics diff --targets results/real/metrics/mnist`
(or `dvc metrics show results/real/metrics/mnist/train_mlp.json`), and read them as a page with
`python -m dlsys.reporting.report --root results/real --out reports/real`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from dlsys.core.outputs import write_json

log = logging.getLogger("dlsys.real_results")

OUT = Path("results/real")


def export(src: Path, family: str, out: Path, record: dict, steps: list[str] | None = None) -> list[Path]:
    """Copy the family's metrics and plots (only `steps` when given: a run that covered part of the family)."""
    metrics_dir = src / "metrics" / family
    files = sorted(f for f in metrics_dir.glob("*.json") if steps is None or f.stem in steps)
    if not files:
        raise SystemExit(f"error: {metrics_dir}: no metrics files (run the family there first)")
    fake = [f.name for f in files if json.loads(f.read_text()).get("data_source") != "real"]
    if fake:
        raise SystemExit(f"error: {metrics_dir}: not real data in {', '.join(fake)} (data_source says so)")
    copied = []
    for sub in ("metrics", "plots"):
        dst = out / sub / family
        if dst.exists():
            shutil.rmtree(dst)
    for f in files:
        for item, dst in ((f, out / "metrics" / family / f.name),
                          (src / "plots" / family / f.stem, out / "plots" / family / f.stem)):
            if item.is_dir():
                shutil.copytree(item, dst)
            elif item.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, dst)
            else:
                continue
            copied.append(dst)
    for name in record.get("datasets", []):
        meta = src / "metrics" / "data" / f"{name}.json"
        if meta.exists():
            (out / "metrics" / "data").mkdir(parents=True, exist_ok=True)
            shutil.copy2(meta, out / "metrics" / "data" / meta.name)
    runs_path = out / "runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.exists() else {}
    runs[family] = record
    write_json(runs_path, dict(sorted(runs.items())))
    return copied


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    ap = argparse.ArgumentParser(prog="python -m dlsys.reporting.real_results", description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="src", type=Path, required=True, help="checkout whose metrics/ and plots/ to copy")
    ap.add_argument("--family", required=True)
    ap.add_argument("--command", required=True, help="the command that produced the run")
    ap.add_argument("--wall-seconds", type=float, required=True)
    ap.add_argument("--data", required=True, help="which real files, and their sizes")
    ap.add_argument("--datasets", required=True, help="comma-separated dataset names the family read (mnist,sevens)")
    ap.add_argument("--note", default="", help="machine, load, anything a reader needs to weigh the numbers")
    ap.add_argument("--steps", help="comma-separated steps to copy (default: every step of the family)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.src, capture_output=True, text=True).stdout.strip()
    record = {"command": args.command, "wall_seconds": round(args.wall_seconds), "data": args.data,
              "datasets": [d for d in args.datasets.split(",") if d], "commit": commit or None, "note": args.note}
    steps = [x for x in args.steps.split(",") if x] if args.steps else None
    if steps:
        record["steps"] = steps
    for path in export(args.src, args.family, args.out, record, steps):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
