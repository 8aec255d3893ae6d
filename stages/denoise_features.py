"""denoise_features: batched STFT of the HW2 denoising files → data/features/denoise/features.pt.

The last `denoise.frame.val_seconds` of the training pair are held out (transformed on their own) to
select the frame denoisers' epoch; test_01's clean reference is used only if it exists.
"""

import logging
import time
from pathlib import Path

import torch

from dlsys.core import load_params, device_from_params, save_torch, write_metrics
from dlsys.core.stage import run_stage
from dlsys.data.audio.sets import load_denoise
from dlsys.data.registry import dataset_source
from dlsys.features.denoise_features import denoise_features, stft_settings

log = logging.getLogger("dlsys.denoise_features")
RAW = Path("data/raw/denoise")
OUT = Path("data/features/denoise/features.pt")


def main() -> None:
    p = load_params()
    n_fft, hop, batch = stft_settings(p)
    val_seconds = p.float("denoise.frame.val_seconds", lo=0.0)
    device = device_from_params(p)
    source = dataset_source(RAW)
    t0 = time.perf_counter()
    data = load_denoise(RAW)
    t1 = time.perf_counter()
    feats = denoise_features(data, n_fft, hop, device, batch, val_seconds)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    feats["source"] = source
    save_torch(feats, OUT)
    t3 = time.perf_counter()
    metrics = {"seconds_total": t3 - t0, "seconds_read": t1 - t0, "seconds_stft": t2 - t1,
               "seconds_write": t3 - t2, "device": device.type, "sr": feats["sr"],
               "train_frames": int(feats["train_mag_x"].shape[0]), "n_bins": int(feats["train_mag_x"].shape[1]),
               "val_frames": int(feats["val_mix"].shape[0]) if "val_mix" in feats else 0,
               "val_seconds": feats["val_seconds"], "test_01_clean_reference": "test_01_s" in feats,
               "test_01_frames": int(feats["test_01_mix"].shape[0]),
               "test_02_frames": int(feats["test_02_mix"].shape[0])}
    write_metrics("denoise", "features", metrics, source)
    log.info("denoise features: %d training frames, STFT %.2f s on %s", metrics["train_frames"],
             metrics["seconds_stft"], device)


if __name__ == "__main__":
    run_stage(main, "denoise_features")
