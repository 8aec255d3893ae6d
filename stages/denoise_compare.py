"""denoise_compare: FC, 1-D CNN and RNN side by side (SNR, SNRi), a bar plot, test_01 spectrograms."""

import json
import logging
from pathlib import Path

import numpy as np
import torch

from dlsys.core import atomic_dir, load_params, write_metrics, write_table_csv
from dlsys.core.errors import MissingDataError
from dlsys.core.outputs import METRICS_ROOT, PLOTS_ROOT, load_torch
from dlsys.core.stage import run_stage
from dlsys.data.wav import read_wav
from dlsys.features.stft import stft
from dlsys.plots import new_figure, save_figure, titled

log = logging.getLogger("dlsys.denoise_compare")
FEATURES = Path("data/features/denoise/features.pt")
OUTPUTS = Path("data/outputs/denoise")
# model → (metrics file, dataset it is evaluated on, SNR key, SNRi key, input-SNR key); the frame models
# fall back to their held-out training tail when test_01 has no clean reference.
ROWS = {
    "fc": ("fc", "denoise test_01", "test_01_snr_db", "test_01_snri_db", "test_01_snr_in_db"),
    "cnn1d": ("cnn1d", "denoise test_01", "test_01_snr_db", "test_01_snri_db", "test_01_snr_in_db"),
    "rnn": ("rnn", "timit v/ (mean)", "v_snr_db", "v_snri_db", "v_snr_in_db"),
}
FALLBACK = ("denoise training tail (validation)", "val_snr_db", "val_snri_db", "val_snr_in_db")


def _read(step: str) -> dict:
    path = METRICS_ROOT / "denoise" / f"{step}.json"
    if not path.exists():
        raise MissingDataError(f"{path}: not found; run dvc repro denoise_{step} first")
    return json.loads(path.read_text())


def main() -> None:
    p = load_params()
    n_fft, hop = p.int("denoise.stft.n_fft", lo=16), p.int("denoise.stft.hop", lo=1)
    rows, sources = [], set()
    for model, (step, dataset, k_snr, k_snri, k_in) in ROWS.items():
        m = _read(step)
        if k_snr not in m and FALLBACK[1] in m:
            dataset, k_snr, k_snri, k_in = FALLBACK
        sources.add(m["data_source"])
        rows.append({"model": model, "dataset": dataset, "snr_db": m[k_snr], "snri_db": m[k_snri],
                     "snr_in_db": m[k_in], "data_source": m["data_source"]})
    source = "real" if sources == {"real"} else "synthetic"
    write_metrics("denoise", "compare", {r["model"]: {k: r[k] for k in ("dataset", "snr_db", "snri_db", "snr_in_db")}
                                         for r in rows}, source)

    feats = load_torch(FEATURES)
    sr = feats["sr"]
    specs = [("noisy test_01", feats["test_01_mix"].abs().T)]
    if "test_01_mag_s" in feats:
        specs.append(("clean test_01_s", feats["test_01_mag_s"].T))
    for model in ("fc", "cnn1d"):
        wav = torch.from_numpy(read_wav(OUTPUTS / model / "test_01.wav", sr))
        specs.append((f"{model} denoised", stft(wav, n_fft, hop).abs()))

    with atomic_dir(PLOTS_ROOT / "denoise" / "compare") as tmp:
        write_table_csv(tmp / "snr.csv", rows)
        fig, ax = new_figure(size=(6.0, 3.6))
        ax = ax[0, 0]
        y = np.arange(len(rows))
        ax.barh(y - 0.2, [r["snr_db"] for r in rows], height=0.4, label="SNR")
        ax.barh(y + 0.2, [r["snri_db"] for r in rows], height=0.4, label="SNR improvement")
        ax.set_yticks(y, [f"{r['model']}\n{r['dataset']}" for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("dB")
        ax.legend()
        ax.set_title(titled("Denoisers: SNR and SNRi", source))
        save_figure(fig, tmp / "snr.png")

        fig, axes = new_figure(ncols=1, nrows=len(specs), size=(7.0, 2.0 * len(specs)), sharex=True)
        for a, (label, mag) in zip(axes[:, 0], specs):
            db = 20 * np.log10(mag.numpy() + 1e-6)
            a.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                     extent=(0, mag.shape[1] * hop / sr, 0, sr / 2000))
            a.set_ylabel("kHz")
            a.set_title(label, fontsize=8)
            a.grid(False)
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle(titled("test_01 spectrograms (dB)", feats["source"]))
        save_figure(fig, tmp / "spectrograms.png")
    for r in rows:
        log.info("%-6s %-18s SNR %6.2f dB  SNRi %6.2f dB", r["model"], r["dataset"], r["snr_db"], r["snri_db"])


if __name__ == "__main__":
    run_stage(main, "denoise_compare")
