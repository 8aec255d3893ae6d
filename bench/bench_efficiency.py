"""How far the heaviest training steps are from this machine's matmul peak, measured in one run.

    python bench/bench_efficiency.py [--device auto] [--steps 10]

A GEMM probe (a square float32 matrix product, the best case for the BLAS) gives the peak FLOP/s; each
model's training step (forward, backward, Adam update) at the pipeline's batch size is timed, its FLOPs
counted by torch's FlopCounterMode, and the achieved rate divided by the peak. A step far below the peak
spends its time outside matrix products (memory-bound layers, small matrices, Python overhead): that is
where a speed-up is possible. Writes bench/results/efficiency.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlsys.core import resolve_device, write_json
from dlsys.models.cifar_cnn import CifarCNN
from dlsys.models.denoisers import FCDenoiser, RNNMaskDenoiser
from dlsys.models.kws_cnn import KwsCNN
from dlsys.models.mlp import MLP, MLPConfig

OUT = Path(__file__).resolve().parent / "results" / "efficiency.json"


def timed(fn, steps: int, sync) -> float:
    """Median seconds of `fn` over `steps` calls after two warm-ups."""
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_peak(dev, n: int, steps: int, sync) -> float:
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    return 2 * n ** 3 / timed(lambda: a @ b, steps, sync)


def train_step(model, loss_of):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_of(model).backward()
        opt.step()
    return step


def cases(dev):
    """(name, the pipeline stage it stands for, batch, model, loss closure): the stages that dominate a run."""
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.rand(*shape, generator=g).to(dev)

    x_mnist, y_mnist = rnd(128, 784), torch.randint(0, 10, (128,), generator=g).to(dev)
    x_cifar, y_cifar = rnd(128, 3, 32, 32), torch.randint(0, 10, (128,), generator=g).to(dev)
    x_kws, y_kws = rnd(128, 40, 101), torch.randint(0, 12, (128,), generator=g).to(dev)
    x_fc, t_fc = rnd(64, 513), rnd(64, 513)
    x_rnn, t_rnn = rnd(16, 100, 513), (rnd(16, 100, 513) > 0.5).float()
    lengths = torch.full((16,), 100)
    mlp = MLP(MLPConfig(dropout_hidden=0.2)).to(dev).train()
    rnn = RNNMaskDenoiser(513, "gru", 256, 2, dropout=0.2).to(dev).train()
    return [
        ("mlp 784-1024x5-10", "mnist_train_mlp, dropout study, SVD fine-tunes", 128, mlp,
         lambda m: F.cross_entropy(m(x_mnist), y_mnist)),
        ("cifar cnn (10, 10, 20)", "cifar_train, cifar_pretext, cifar_ssl_*", 128, CifarCNN().to(dev).train(),
         lambda m: F.cross_entropy(m(x_cifar), y_cifar)),
        ("kws cnn (12-48 filters)", "signals_kws", 128, KwsCNN(12).to(dev).train(),
         lambda m: F.cross_entropy(m(x_kws), y_kws)),
        ("fc denoiser 513-1024-1024-513", "denoise_frame@fc", 64, FCDenoiser(513, [1024, 1024], 0.2, "sigmoid")
         .to(dev).train(), lambda m: F.mse_loss(m(x_fc), t_fc)),
        ("gru 513-256x2 over 100 frames", "denoise_rnn", 16, rnn,
         lambda m: F.binary_cross_entropy_with_logits(m(x_rnn, lengths), t_rnn)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--gemm", type=int, default=2048, help="side of the square GEMM probe")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    peak = gemm_peak(dev, args.gemm, args.steps, sync)
    rows = []
    for name, stage, batch, model, loss_of in cases(dev):
        step = train_step(model, loss_of)
        with FlopCounterMode(display=False) as counter:
            loss_of(model).backward()
        model.zero_grad(set_to_none=True)
        flops = counter.get_total_flops() * 1.0  # forward + backward (the optimizer's few FLOPs not counted)
        sec = timed(step, args.steps, sync)
        rows.append({"model": name, "stages": stage, "batch": batch, "step_ms": round(1e3 * sec, 2),
                     "samples_per_s": round(batch / sec), "gflop_per_step": round(flops / 1e9, 3),
                     "achieved_gflop_s": round(flops / sec / 1e9, 1), "fraction_of_gemm_peak": round(flops / sec / peak, 3)})
    result = {"device": str(dev), "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "torch": torch.__version__, "gemm_side": args.gemm, "gemm_peak_gflop_s": round(peak / 1e9, 1),
              "cases": rows}
    write_json(OUT, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
