"""denoise_fc / denoise_cnn1d: a frame denoiser on the HW2 files (`python stages/denoise_frame.py fc|cnn1d`).

Trains on noisy → clean magnitude columns, validates every epoch by the SNR of the denoised held-out
tail of the training pair (keeping the best epoch), reports test_01's SNR when its clean reference
exists (a test number: never used for selection), writes the denoised test_01 / test_02 wavs, the
model, metrics and the validation-SNR curve.
"""

import argparse
import logging
from pathlib import Path

from dlsys.core import (atomic_dir, load_params, device_from_params, save_torch, seed_everything, write_metrics,
                        write_table_csv)
from dlsys.core.outputs import PLOTS_ROOT, load_torch
from dlsys.core.errors import UserError
from dlsys.core.stage import run_stage
from dlsys.data.wav import write_wav
from dlsys.evaluation.reconstruct import clip_audio, snr_report
from dlsys.models.denoisers import CNN1dDenoiser, FCDenoiser, cnn1d_flat_size
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training.denoise import TrainConfig, frame_selection, train_frame_denoiser

log = logging.getLogger("dlsys.denoise_frame")
FEATURES = Path("data/features/denoise/features.pt")
MODELS = Path("data/models/denoise")
OUTPUTS = Path("data/outputs/denoise")
TITLES = {"fc": "FC denoiser", "cnn1d": "1-D CNN denoiser"}


def build_model(kind: str, g, n_bins: int):
    dropout = g.float("dropout", lo=0.0, hi=0.95)
    out_act = g.choice("out_act", ["relu", "softplus", "sigmoid"])
    if kind == "fc":
        return FCDenoiser(n_bins, g.list("hidden", int, min_len=2, lo=1), dropout, out_act)
    conv = g.raw("conv")
    if (not isinstance(conv, list) or not conv
            or not all(isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                   and v >= 1 for v in c) for c in conv)):
        raise UserError(f"params.yaml: 'denoise.cnn1d.conv' must be a non-empty list of [channels, kernel, stride] "
                        f"positive integers, got {conv!r}")
    pool = g.int("pool", lo=1)
    try:
        cnn1d_flat_size(n_bins, conv, pool)
    except ValueError as exc:
        raise UserError(f"params.yaml: 'denoise.cnn1d.conv' / 'pool': {exc}") from None
    return CNN1dDenoiser(n_bins, conv, pool, dropout, out_act)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", choices=sorted(TITLES))
    kind = ap.parse_args().model
    p = load_params()
    g = p.sub(f"denoise.{kind}")
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    input_kind = p.choice("denoise.input", ["log", "linear"])
    log_floor = p.float("denoise.log_floor", lo=0.0)
    predict = g.choice("predict", ["mask", "magnitude"])
    if predict == "mask" and g.raw("out_act") != "sigmoid":
        log.warning("denoise.%s: predict 'mask' with out_act %r allows gains above 1", kind, g.raw("out_act"))
    cfg = TrainConfig(epochs=g.int("epochs", lo=1), batch_size=g.int("batch_size", lo=1),
                      lr=g.float("lr", lo=0.0), weight_decay=g.float("weight_decay", lo=0.0))
    feats = load_torch(FEATURES)
    source, n_fft, hop, sr = feats["source"], feats["n_fft"], feats["hop"], feats["sr"]
    model = build_model(kind, g, feats["train_mag_x"].shape[1])
    n_params = sum(t.numel() for t in model.parameters())
    log.info("%s: %d parameters, %d training frames", kind, n_params, feats["train_mag_x"].shape[0])

    den, history = train_frame_denoiser(model, feats, cfg, device, gen, input_kind, log_floor, predict, kind)

    est01 = den.denoise(feats["test_01_mix"].to(device), len(feats["test_01_x"]), n_fft, hop).cpu()
    est02 = den.denoise(feats["test_02_mix"].to(device), len(feats["test_02_x"]), n_fft, hop).cpu()
    test = {}
    if "test_01_s" in feats:
        rep = snr_report(feats["test_01_s"], est01, feats["test_01_x"])
        test = {"test_01_snr_db": float(rep.snr[0]), "test_01_snri_db": float(rep.snri[0]),
                "test_01_snr_in_db": float(rep.snr_in[0])}
    val = {}
    if "val_mix" in feats:
        est_val = den.denoise(feats["val_mix"].to(device), len(feats["val_x"]), n_fft, hop).cpu()
        rep_val = snr_report(feats["val_s"], est_val, feats["val_x"])
        val = {"val_snr_db": float(rep_val.snr[0]), "val_snri_db": float(rep_val.snri[0]),
               "val_snr_in_db": float(rep_val.snr_in[0]), "val_seconds": feats["val_seconds"]}
    clipped = 0
    with atomic_dir(OUTPUTS / kind) as tmp:
        for name, est in (("test_01", est01), ("test_02", est02)):
            wav, n = clip_audio(est)
            clipped += n
            write_wav(tmp / f"{name}.wav", wav, sr)
    save_torch({"kind": kind, "state_dict": den.model.state_dict(), "transform": den.transform.state(),
                "scale": den.scale, "predict": predict}, MODELS / f"{kind}.pt")

    last = history.rows[-1] if history.rows else {}
    metrics = {**test, **val,
               "best_epoch": (history.best or {}).get("epoch"),
               "last_epoch_val_snr_db": last.get("val_snr_db"),
               "selection": frame_selection(feats),
               "epochs_run": history.epochs_run, "diverged": history.diverged, "diverged_at": history.diverged_at,
               "train_seconds": history.seconds, "parameters": n_params, "clipped_samples": clipped,
               "device": device.type}
    if kind == "cnn1d":
        metrics["flat_size"] = den.model.flat_size
    write_metrics("denoise", kind, metrics, source)
    with atomic_dir(PLOTS_ROOT / "denoise" / kind) as tmp:
        write_table_csv(tmp / "val_snr.csv", [{k: r.get(k) for k in ("epoch", "train_loss", "val_snr_db", "val_snri_db")}
                                             for r in history.rows])
        fig, ax = new_figure()
        ax = ax[0, 0]
        ax.plot([r["epoch"] for r in history.rows], [r.get("val_snr_db") for r in history.rows], marker="o", ms=3)
        if history.best:
            ax.axvline(history.best["epoch"], color="gray", ls="--", lw=1, label=f"best epoch {history.best['epoch']}")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.set_ylabel("held-out tail SNR (dB)")
        ax.set_title(titled(f"{TITLES[kind]}: validation SNR per epoch", source))
        save_figure(fig, tmp / "val_snr.png")
    log.info("%s: %s, best epoch %s", kind, ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()
                                                      if k.endswith(("snr_db", "snri_db")) and v is not None),
             metrics["best_epoch"])


if __name__ == "__main__":
    run_stage(main, "denoise_frame")
