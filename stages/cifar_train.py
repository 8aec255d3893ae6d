"""cifar_train@{baseline,augmented}: the tiny CNN on the originals or the 4× augmented set, same settings."""

import argparse
import logging

import torch

from dlsys.core import load_torch, save_torch, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.features.augment import augment_set, to_signed
from dlsys.models.cifar_cnn import build_model
from dlsys.training import TensorBatches, fit

from cifar_common import FAMILY, accuracy, cross_entropy, load_unit, log, setup

VARIANTS = ("baseline", "augmented")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("variant", choices=VARIANTS)
    variant = ap.parse_args().variant
    s = setup()
    p = s.params.sub("cifar")
    epochs = p.int("train.epochs", lo=1)
    batch_size = p.int("train.batch_size", lo=1)
    lr = p.float("train.lr", lo=0.0)
    eval_batch = p.int("eval_batch", lo=1)
    bright, dark = p.float("augment.bright", lo=1.0), p.float("augment.dark", lo=0.0, hi=1.0)
    model = build_model(p.sub("model"), n_classes=10).to(s.device)

    x, y, _, _, source, _ = load_unit(s.device)
    split = load_torch(f"data/features/{FAMILY}/split.pt")
    tr, va = split["train"].to(s.device), split["val"].to(s.device)
    x_tr, y_tr = x[tr], y[tr]
    if variant == "augmented":
        x_tr, y_tr = augment_set(x_tr, y_tr, bright, dark)
    x_tr, x_va, y_va = to_signed(x_tr), to_signed(x[va]), y[va]
    del x

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = TensorBatches([x_tr, y_tr], batch_size, generator=s.generator)
    hist = fit(model, opt, batches, cross_entropy, epochs, desc=f"cifar_train@{variant}",
               evaluate=lambda m, _e: {"val_acc": accuracy(m, x_va, y_va, eval_batch)}, select="val_acc")
    save_torch({"state_dict": model.state_dict(), "n_classes": 10}, f"data/models/{FAMILY}/{variant}.pt")
    with atomic_dir(PLOTS_ROOT / FAMILY / f"train_{variant}") as tmp:
        write_table_csv(tmp / "curve.csv", [{"epoch": r["epoch"], "train_loss": r["train_loss"],
                                              "val_acc": r.get("val_acc")} for r in hist.rows])
    samples_per_s = len(x_tr) * hist.epochs_run / max(hist.seconds, 1e-9)
    write_metrics(FAMILY, f"train_{variant}", {
        "best_val_acc": hist.best.get("val_acc"), "best_epoch": hist.best["epoch"],
        "final_val_acc": hist.rows[-1].get("val_acc"), "epochs": hist.epochs_run,
        "n_train_images": len(x_tr), "n_val": len(y_va), "diverged": hist.diverged,
        "seconds": round(hist.seconds, 1), "samples_per_s": round(samples_per_s),
    }, source)
    log.info("%s: best val acc %.4f at epoch %d (%.0f samples/s)", variant, hist.best.get("val_acc", float("nan")),
             hist.best["epoch"], samples_per_s)


if __name__ == "__main__":
    run_stage(main, "cifar_train")
