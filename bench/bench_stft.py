"""STFT features: batched device STFT (dlsys.features.stft.stft_many) vs a librosa per-file loop.

The timit-sized set: 1,200 mixtures of about three seconds at 16 kHz (lengths vary, as real files do),
n_fft 1024, hop 512. Both sides produce the magnitude of every file; the ratio is measured in this run,
and the numerical agreement (max |Δ| of magnitudes) is checked. Goal: >= 4x. Writes
bench/results/stft.json.

    python bench/bench_stft.py [--files 1200] [--device auto] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from dlsys.core import resolve_device, write_json
from dlsys.features.stft import stft_many

log = logging.getLogger("bench.stft")
GOAL = 4.0


def make_set(n_files: int, sr: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(int(2.5 * sr), int(3.5 * sr), n_files)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def librosa_loop(sigs, n_fft, hop):
    return [np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant")) for x in sigs]


def batched(sigs, n_fft, hop, device, batch_size):
    mags = [s.abs() for s in stft_many(sigs, n_fft, hop, device=device, batch_size=batch_size)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return mags


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1200)
    ap.add_argument("--n-fft", type=int, default=1024)
    ap.add_argument("--hop", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/stft.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = resolve_device(args.device)
    sigs = make_set(args.files, 16000, seed=0)
    batched(sigs[:8], args.n_fft, args.hop, device, args.batch_size)  # warm-up (allocator, CUDA context)
    t_lib, ref = best_of(lambda: librosa_loop(sigs, args.n_fft, args.hop), args.repeats)
    t_bat, got = best_of(lambda: batched(sigs, args.n_fft, args.hop, device, args.batch_size), args.repeats)
    max_abs = max(float(np.max(np.abs(g.cpu().numpy() - r))) for g, r in zip(got, ref))
    max_mag = max(float(r.max()) for r in ref)
    ratio = t_lib / t_bat
    result = {
        "claim": "batched device STFT vs librosa per-file loop, timit-sized set",
        "files": args.files, "seconds_audio": sum(len(s) for s in sigs) / 16000,
        "n_fft": args.n_fft, "hop": args.hop, "batch_size": args.batch_size, "device": device.type,
        "torch_threads": torch.get_num_threads(), "repeats": args.repeats, "timing": "best of repeats",
        "librosa_seconds": t_lib, "batched_seconds": t_bat, "speedup": ratio, "goal_speedup": GOAL,
        "meets_goal": ratio >= GOAL, "max_abs_magnitude_diff": max_abs, "max_magnitude": max_mag,
        "agreement_ok": max_abs <= 1e-4 * max(1.0, max_mag / 100),
        "machine": platform.machine(), "cpu_count": __import__("os").cpu_count(),
    }
    write_json(Path(args.out), result)
    log.info("librosa loop %.3f s | batched %s %.3f s | speedup %.2fx (goal >= %.0fx: %s) | max |diff| %.2e "
             "(max magnitude %.1f)", t_lib, device.type, t_bat, ratio, GOAL, "met" if ratio >= GOAL else "NOT met",
             max_abs, max_mag)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
