"""SVD in the loop: training-epoch time vs the plain baseline epoch, and vs a full torch.linalg.svd per step.

All three variants train the same 784-1024x5-10 MLP (W1…W5 projected to rank D) on the same random
batches with the same optimizer, measured in one run, interleaved to share the machine's load:
  baseline       plain dense training step
  subspace       warm-started subspace iteration per matrix per step, W keeps its full rank (the course's)
  kept           the same, and W set to its rank-D projection every step (mnist_svd_in_loop's default,
                 `keep_projected`)
  full_svd       a full torch.linalg.svd of every matrix every step (the peers' method)
Epoch time = median step time × steps per epoch (n_train / batch). Writes bench/results/svd_in_loop.json.

    python bench/bench_svd_in_loop.py [--rank 20] [--batch 128] [--steps 20] [--n-train 12000]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from dlsys.compression.factorized import projected_model
from dlsys.core import resolve_device, write_json
from dlsys.models.mlp import MLP, MLPConfig
from dlsys.tasks.mnist import make_optimizer


def step_fn(model, opt, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rank", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant (full_svd: a quarter)")
    ap.add_argument("--n-train", type=int, default=12000, help="samples per epoch")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    torch.manual_seed(0)
    base = MLP(MLPConfig(dropout_hidden=0.2)).to(dev)
    x = torch.rand(args.batch, 784, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    variants = {"baseline": copy.deepcopy(base),
                "subspace": projected_model(base, 5, args.rank, method="subspace"),
                "kept": projected_model(base, 5, args.rank, method="subspace", keep_projected=True),
                "full_svd": projected_model(base, 5, args.rank, method="exact")}
    steps = {k: step_fn(m.train(), make_optimizer("adam", m.parameters(), 1e-4), x, y) for k, m in variants.items()}
    times = {k: [] for k in variants}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for s in steps.values():  # warm-up
        s()
    for i in range(args.steps):
        for k, s in steps.items():
            if k == "full_svd" and i % 4:
                continue
            sync()
            t0 = time.perf_counter()
            s()
            sync()
            times[k].append(time.perf_counter() - t0)
    per_epoch = -(-args.n_train // args.batch)
    step = {k: statistics.median(v) for k, v in times.items()}
    epoch = {k: v * per_epoch for k, v in step.items()}
    result = {
        "rank": args.rank, "batch_size": args.batch, "steps_per_epoch": per_epoch, "device": str(dev),
        "threads": torch.get_num_threads(), "machine": platform.machine(),
        "step_seconds": step, "epoch_seconds": epoch,
        "ratio_subspace_vs_baseline": epoch["subspace"] / epoch["baseline"],
        "ratio_kept_vs_baseline": epoch["kept"] / epoch["baseline"],
        "ratio_full_svd_vs_baseline": epoch["full_svd"] / epoch["baseline"],
        "speedup_subspace_vs_full_svd": epoch["full_svd"] / epoch["subspace"],
        "goal_ratio_vs_baseline": 1.3,
    }
    out = write_json(Path("bench/results/svd_in_loop.json"), result)
    print(f"rank {args.rank}, batch {args.batch}, {per_epoch} steps/epoch on {dev}:")
    for k in variants:
        print(f"  {k:9s} {1e3 * step[k]:8.1f} ms/step  {epoch[k]:7.2f} s/epoch")
    print(f"  SVD in the loop, W kept projected (the stage's default) / baseline epoch: "
          f"{result['ratio_kept_vs_baseline']:.2f}x (goal <= 1.3x)")
    print(f"  SVD in the loop, W full rank (the course's) / baseline epoch: {result['ratio_subspace_vs_baseline']:.2f}x")
    print(f"  full SVD per step / baseline:     {result['ratio_full_svd_vs_baseline']:.2f}x")
    print(f"  subspace iteration vs full SVD:   {result['speedup_subspace_vs_full_svd']:.1f}x faster")
    print(f"  -> {out}")


if __name__ == "__main__":
    main()
