"""denoise_features_timit: batched STFT of the timit mixtures, sources and noises, plus ideal binary masks.

Writes data/features/timit_denoise/{tr,v,te}.pt: frame-major magnitudes |X|, |S|, |N|, masks
M = 1[|S| > |N|], complex mixtures for the splits that are reconstructed (v, te), and the v waveforms.
"""

import logging
import time
from pathlib import Path

import torch

from dlsys.core import atomic_dir, load_params, device_from_params, save_torch, write_metrics
from dlsys.core.stage import run_stage
from dlsys.data.audio.sets import load_timit
from dlsys.data.registry import dataset_source
from dlsys.features.denoise_features import stft_settings, timit_split_features

log = logging.getLogger("dlsys.denoise_features_timit")
RAW = Path("data/raw/timit_denoise")
OUT = Path("data/features/timit_denoise")


def main() -> None:
    p = load_params()
    n_fft, hop, batch = stft_settings(p)
    device = device_from_params(p)
    source = dataset_source(RAW)
    t0 = time.perf_counter()
    d = load_timit(RAW)
    t1 = time.perf_counter()
    common = dict(n_fft=n_fft, hop=hop, device=device, batch_size=batch)
    splits = {
        "tr": timit_split_features(d.tr_x, d.tr_s, d.tr_n, d.tr_names, keep_mix=False, **common),
        "v": timit_split_features(d.v_x, d.v_s, d.v_n, d.v_names, keep_waves=True, **common),
        "te": timit_split_features(d.te_x, None, None, d.te_names, **common),
    }
    if device.type == "cuda":
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    with atomic_dir(OUT) as tmp:
        for name, feats in splits.items():
            save_torch({**feats, "sr": int(d.sr), "n_fft": n_fft, "hop": hop, "source": source}, tmp / f"{name}.pt")
    t3 = time.perf_counter()
    metrics = {"seconds_total": t3 - t0, "seconds_read": t1 - t0, "seconds_stft": t2 - t1,
               "seconds_write": t3 - t2, "device": device.type, "sr": int(d.sr)}
    for name, feats in splits.items():
        metrics[f"{name}_files"] = len(feats["names"])
        metrics[f"{name}_frames"] = int(feats["frames"].sum())
        if "ibm" in feats:
            metrics[f"{name}_ibm_ones_fraction"] = float(feats["ibm"].float().mean())
    write_metrics("denoise", "features_timit", metrics, source)
    log.info("timit features: %d/%d/%d files, STFT %.2f s on %s", metrics["tr_files"], metrics["v_files"],
             metrics["te_files"], metrics["seconds_stft"], device)


if __name__ == "__main__":
    run_stage(main, "denoise_features_timit")
