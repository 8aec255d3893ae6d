"""denoise_rnn: GRU/LSTM ideal-binary-mask denoiser on the timit mixtures.

Trains on (optionally truncated) padded sequences with a masked BCE loss, validates by the mean and
median SNR over all v/ files (Ŝ = M̂ ⊙ X, inverse STFT) keeping the best epoch, and denoises every te/
mixture into data/outputs/timit_denoise/te/ plus te.zip (what the course asks to submit).
"""

import logging
import zipfile
from pathlib import Path

import numpy as np

from dlsys.core import (atomic_dir, load_params, device_from_params, save_torch, seed_everything, write_metrics,
                        write_table_csv)
from dlsys.core.outputs import PLOTS_ROOT, atomic_path, load_torch
from dlsys.core.stage import run_stage
from dlsys.data.wav import write_wav
from dlsys.evaluation.reconstruct import clip_audio, masked_istft_many, snr_report_many
from dlsys.models.denoisers import RNNMaskDenoiser
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training.denoise import TrainConfig, denoise_split, padded_split, train_mask_rnn

log = logging.getLogger("dlsys.denoise_rnn")
FEATURES = Path("data/features/timit_denoise")
MODEL = Path("data/models/denoise/rnn.pt")
OUTPUTS = Path("data/outputs/timit_denoise")


def main() -> None:
    p = load_params()
    g = p.sub("denoise.rnn")
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    input_kind = p.choice("denoise.input", ["log", "linear"])
    log_floor = p.float("denoise.log_floor", lo=0.0)
    cell = g.choice("cell", ["gru", "lstm"])
    binary = g.choice("mask", ["soft", "binary"]) == "binary"
    t_trunc = g.int("t_trunc", lo=0)
    eval_batch = g.int("eval_batch", lo=1)
    cfg = TrainConfig(epochs=g.int("epochs", lo=1), batch_size=g.int("batch_size", lo=1),
                      lr=g.float("lr", lo=0.0), weight_decay=g.float("weight_decay", lo=0.0),
                      grad_clip=g.float("grad_clip", lo=0.0) or None)
    tr, v, te = (load_torch(FEATURES / f"{s}.pt") for s in ("tr", "v", "te"))
    source, n_fft, hop, sr = v["source"], v["n_fft"], v["hop"], v["sr"]
    n_bins = tr["mag_x"].shape[1]
    model = RNNMaskDenoiser(n_bins, cell, g.int("hidden", lo=1), g.int("layers", lo=1), g.bool("bidirectional"),
                            g.float("dropout", lo=0.0, hi=0.95))
    n_params = sum(t.numel() for t in model.parameters())
    log.info("rnn (%s): %d parameters; %d train / %d v / %d te files", cell, n_params, len(tr["names"]),
             len(v["names"]), len(te["names"]))

    transform, vp, history = train_mask_rnn(model, tr, v, cfg, device, gen, input_kind, log_floor, t_trunc,
                                            eval_batch, binary, n_fft, hop)
    # The selected model on v, next to the unprocessed mixture and the oracle IBM (the ceiling of the task).
    est_v = denoise_split(model, vp, n_fft, hop, eval_batch, binary)
    rep = snr_report_many(vp["clean_wave"], est_v, vp["mix_wave"], vp["lengths"])
    oracle = masked_istft_many(vp["mix"], vp["ibm"], vp["lengths"], n_fft, hop)
    rep_oracle = snr_report_many(vp["clean_wave"], oracle, vp["mix_wave"], vp["lengths"])

    tep = padded_split(te, transform, device)
    est_te = denoise_split(model, tep, n_fft, hop, eval_batch, binary).cpu()
    clipped = 0
    with atomic_dir(OUTPUTS) as tmp:
        (tmp / "te").mkdir()
        for i, name in enumerate(te["names"]):
            wav, n = clip_audio(est_te[i, : int(te["lengths"][i])])
            clipped += n
            write_wav(tmp / "te" / f"{name}.wav", wav, sr)
        with atomic_path(tmp / "te.zip") as zpath:
            with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in te["names"]:
                    zf.write(tmp / "te" / f"{name}.wav", arcname=f"te/{name}.wav")
    save_torch({"state_dict": model.state_dict(), "transform": transform.state(), "cell": cell}, MODEL)

    metrics = {**rep.summary("v_"), "v_snr_oracle_ibm_db": float(np.mean(rep_oracle.snr)),
               "best_epoch": (history.best or {}).get("epoch"),
               "last_epoch_v_snr_db": (history.rows[-1] if history.rows else {}).get("val_snr_db"),
               "epochs_run": history.epochs_run, "diverged": history.diverged, "diverged_at": history.diverged_at,
               "train_seconds": history.seconds, "parameters": n_params, "te_files": len(te["names"]),
               "clipped_samples": clipped, "device": device.type}
    write_metrics("denoise", "rnn", metrics, source)
    with atomic_dir(PLOTS_ROOT / "denoise" / "rnn") as tmp:
        keys = ("epoch", "train_loss", "val_snr_db", "val_snr_median_db", "val_snri_db")
        write_table_csv(tmp / "val_snr.csv", [{k: r.get(k) for k in keys} for r in history.rows])
        fig, ax = new_figure()
        ax = ax[0, 0]
        ep = [r["epoch"] for r in history.rows]
        ax.plot(ep, [r.get("val_snr_db") for r in history.rows], marker="o", ms=3, label="mean")
        ax.plot(ep, [r.get("val_snr_median_db") for r in history.rows], marker="s", ms=3, label="median")
        ax.axhline(metrics["v_snr_oracle_ibm_db"], color="gray", ls=":", lw=1, label="oracle IBM")
        ax.set_xlabel("epoch")
        ax.set_ylabel("v/ SNR (dB)")
        ax.legend()
        ax.set_title(titled(f"{cell.upper()} IBM denoiser: validation SNR per epoch", source))
        save_figure(fig, tmp / "val_snr.png")
    log.info("rnn: v mean SNR %.2f dB (median %.2f, SNRi %.2f; oracle IBM %.2f), best epoch %s",
             metrics["v_snr_db"], metrics["v_snr_median_db"], metrics["v_snri_db"], metrics["v_snr_oracle_ibm_db"],
             metrics["best_epoch"])


if __name__ == "__main__":
    run_stage(main, "denoise_rnn")
