"""Training input path: time per training step through the shared loop vs the pure compute.

The course's tiny CIFAR CNN, batch 128 (params `cifar.train.batch_size`), Adam. Two ways, same model:

* loop:     `dlsys.training.train_epoch` over `TensorBatches` (seeded shuffle, index the resident
            tensors on the device, loss, backward, step, loss bookkeeping) on an N-image set;
* resident: forward + backward + step on one batch that is already resident, repeated.

overhead = loop time per step / resident time per step - 1 (goal: <= 10%). Measured in this run,
best of `--repeats`. Writes bench/results/input_path.json.

    python bench/bench_input_path.py [--images 9000] [--batch 128] [--device auto] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlsys.core import resolve_device, write_json
from dlsys.models.cifar_cnn import CifarCNN
from dlsys.training import TensorBatches, train_epoch

log = logging.getLogger("bench.input_path")
GOAL = 0.10


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def time_loop(model, opt, batches, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    train_epoch(model, opt, batches, loss_fn)
    sync(device)
    return (time.perf_counter() - t0) / len(batches)


def time_resident(model, opt, x, y, steps, device) -> float:
    model.train()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=9000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/input_path.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = resolve_device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.images, 3, 32, 32, generator=gen).mul_(2).sub_(1).to(device)
    y = torch.randint(0, 10, (args.images,), generator=gen).to(device)
    torch.manual_seed(args.seed)
    model = CifarCNN(10).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = TensorBatches([x, y], args.batch, generator=gen, drop_last=True)
    xb, yb = x[:args.batch].clone(), y[:args.batch].clone()

    time_resident(model, opt, xb, yb, 5, device)  # warm-up (allocator, kernels)
    loop_t, res_t = [], []
    for _ in range(args.repeats):  # interleaved, so a load change on a shared machine hits both
        loop_t.append(time_loop(model, opt, batches, device))
        res_t.append(time_resident(model, opt, xb, yb, len(batches), device))
    loop_s, res_s = min(loop_t), min(res_t)
    overhead = loop_s / res_s - 1.0
    result = {
        "claim": "training input path overhead per step vs pure forward+backward on a resident batch",
        "goal_overhead": GOAL, "overhead": overhead, "ratio": loop_s / res_s, "meets_goal": overhead <= GOAL,
        "loop_ms_per_step": loop_s * 1e3, "resident_ms_per_step": res_s * 1e3,
        "samples_per_s_loop": args.batch / loop_s, "images": args.images, "batch": args.batch,
        "steps_per_epoch": len(batches), "repeats": args.repeats, "device": str(device),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
    }
    write_json(Path(args.out), result)
    log.info("input path: loop %.2f ms/step, resident %.2f ms/step → overhead %+.1f%% (goal <= %.0f%%) [%s]",
             loop_s * 1e3, res_s * 1e3, overhead * 100, GOAL * 100, device)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
