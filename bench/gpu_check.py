"""GPU check: one short, prepared run on a CUDA machine (designed for under 8 minutes on one GPU).

    python bench/gpu_check.py [--out bench/results] [--rtol 0.1] [--atol 0.05] [--skip-cpu CPU_DIR]
    bench/gpu_check.sh                 (the same, with the environment set up)

1. The machine: GPU name, torch / CUDA / cuDNN versions, memory.
2. Parity: the smoke profile (`params-smoke.yaml`: every stage, tiny sizes) runs twice, `device: cpu` and
   `device: cuda`, each in its own throw-away copy of this checkout. A stage that leaves a tensor on the
   wrong device fails the CUDA run (torch refuses mixed devices), and every numeric metric must agree
   within `atol + rtol·|cpu value|` (defaults 0.05 and 10 %: one- and two-epoch runs of tiny models, where
   CUDA's different summation order moves results a little). Keys naming the device are not compared.
3. Times: every stage's wall time and CUDA peak memory (`DLSYS_TIMINGS`) go to
   `<out>/stage_times_cuda_smoke.jsonl`, the CPU run's to `<out>/stage_times_cpu_smoke.jsonl`, and a
   summary (parity table, per-stage times and ratios) to `<out>/gpu_check.json`.

`--skip-cpu DIR` reuses a CPU smoke copy made earlier (`make smoke KEEP=DIR`, run here on the CPU) so the
device time is spent on the CUDA run only. Exit status: 0 when every stage ran and every metric agreed,
1 otherwise (the table says which).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from dlsys.core.params import read_yaml
from dlsys.core.smoke import repro_in_copy
from dlsys.reporting.compare import diff_metrics
from dlsys.reporting.pipeline import PipelineOrder

log = logging.getLogger("dlsys.gpu_check")
ROOT = Path(__file__).resolve().parents[1]
DEVICE_KEYS = ("device",)


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    return info


def read_metrics(repo: Path) -> dict[str, dict]:
    return {str(p.relative_to(repo)): json.loads(p.read_text()) for p in sorted((repo / "metrics").rglob("*.json"))}


def without_device_keys(metrics: dict) -> dict:
    return {k: (without_device_keys(v) if isinstance(v, dict) else v) for k, v in metrics.items()
            if k not in DEVICE_KEYS}


def parity(cpu: dict[str, dict], cuda: dict[str, dict], rtol: float, atol: float) -> list[dict]:
    """The metrics that differ between the two runs beyond the tolerance (added/removed count too)."""
    a = {f: without_device_keys(m) for f, m in cpu.items()}
    b = {f: without_device_keys(m) for f, m in cuda.items()}
    diff = diff_metrics(a, b, rtol, atol, PipelineOrder.load(ROOT))
    return [{"file": c.file, "key": c.key, "cpu": c.old, "cuda": c.new, "kind": c.kind} for c in diff.changes]


def read_times(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {row["stage"]: row for row in map(json.loads, path.read_text().splitlines())}


def smoke_run(device: str, dst: Path, times: Path) -> int:
    overlay = read_yaml((ROOT / "params-smoke.yaml").read_text()) or {}
    overlay["device"] = device
    times.unlink(missing_ok=True)
    rc, seconds = repro_in_copy(ROOT, overlay, dst, {"DLSYS_TIMINGS": str(times.resolve())})
    log.info("smoke run on %s: dvc repro exit %d in %.0f s", device, rc, seconds)
    return rc


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--rtol", type=float, default=0.10)
    ap.add_argument("--atol", type=float, default=0.05)
    ap.add_argument("--skip-cpu", type=Path, help="a CPU smoke copy made earlier (make smoke KEEP=DIR)")
    ap.add_argument("--device", default="cuda", help="the device to check against the CPU (default cuda)")
    args = ap.parse_args(argv)
    info = machine()
    log.info("machine: %s", info)
    if args.device == "cuda" and not info["cuda_available"]:
        log.error("no CUDA device here: torch %s sees none (run this on the GPU machine)", torch.__version__)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dlsys-gpu-check-"))
    try:
        cpu_dir = args.skip_cpu or work / "cpu"
        if args.skip_cpu is None and smoke_run("cpu", cpu_dir, args.out / "stage_times_cpu_smoke.jsonl") != 0:
            return 1
        rc = smoke_run(args.device, work / args.device, args.out / f"stage_times_{args.device}_smoke.jsonl")
        mismatches = parity(read_metrics(cpu_dir), read_metrics(work / args.device), args.rtol, args.atol) \
            if rc == 0 else []
        cpu_t = read_times(args.out / "stage_times_cpu_smoke.jsonl")
        dev_t = read_times(args.out / f"stage_times_{args.device}_smoke.jsonl")
        stages = [{"stage": s, "cpu_s": cpu_t.get(s, {}).get("seconds"), f"{args.device}_s": row["seconds"],
                   "peak_mb": row.get("cuda_peak_mb")} for s, row in dev_t.items()]
        summary = {"machine": info, "device": args.device, "dvc_repro_exit": rc, "rtol": args.rtol, "atol": args.atol,
                   "metrics_compared": len(read_metrics(cpu_dir)), "mismatches": mismatches, "stages": stages}
        (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
        for m in mismatches:
            log.warning("%s %s: cpu %s vs %s %s (%s)", m["file"], m["key"], m["cpu"], args.device, m["cuda"], m["kind"])
        ok = rc == 0 and not mismatches
        log.info("%s: %d stages ran on %s, %d metrics beyond tolerance; summary in %s", "PASS" if ok else "FAIL",
                 len(dev_t), args.device, len(mismatches), args.out / "gpu_check.json")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
