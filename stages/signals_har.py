"""signals_har: the lecture's dense net or 1-D CNN on WISDM accelerometer windows, subject-disjoint test."""

import argparse
import logging

import numpy as np
import torch

from dlsys.core import load_params, device_from_params, save_torch, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.core.errors import UserError
from dlsys.data.har import ACTIVITIES, RAW_FILE, read_raw, subject_split, window
from dlsys.data.registry import dataset_source, raw_dir
from dlsys.evaluation.classification import (confusion_matrix, confusion_rows, per_class_accuracy,
                                             predict)
from dlsys.plots.confusion import plot_confusion
from dlsys.models.har import build, n_params
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training import TensorBatches, fit

log = logging.getLogger("dlsys.signals_har")
FAMILY = "signals"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", choices=["dense", "cnn1d"])
    kind = ap.parse_args().model
    p = load_params()
    h = p.sub("har")
    length, step = h.int("window", lo=2), h.int("step", lo=1)
    first_test = h.int("first_test_subject", lo=1)
    epochs, batch = h.int("epochs", lo=1), h.int("batch_size", lo=1)
    lr, dropout = h.float("lr", lo=0), h.float("dropout", lo=0, hi=1)
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))

    raw = raw_dir("har")
    source = dataset_source(raw)
    X, y, subj = window(read_raw(raw / RAW_FILE), length, step)
    train, test = subject_split(subj, first_test)
    if not train.any() or not test.any():
        raise UserError(f"params.yaml: 'har.first_test_subject' = {first_test} leaves an empty train or test "
                        f"split (subjects {subj.min()}..{subj.max()})")
    # Standardise each axis with training statistics only.
    mean, std = X[train].mean((0, 1)), X[train].std((0, 1)) + 1e-6
    Xn = ((X - mean) / std).astype(np.float32)
    xtr, ytr = torch.from_numpy(Xn[train]).to(device), torch.from_numpy(y[train]).to(device)
    xte, yte = torch.from_numpy(Xn[test]).to(device), torch.from_numpy(y[test]).to(device)
    log.info("%d train windows (%d subjects), %d test windows (%d subjects)", len(xtr),
             len(np.unique(subj[train])), len(xte), len(np.unique(subj[test])))

    model = build(kind, length, X.shape[2], len(ACTIVITIES), dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ce = torch.nn.CrossEntropyLoss()

    def evaluate(m, _epoch):
        logits = torch.cat([m(xte[i:i + 4096]) for i in range(0, len(xte), 4096)])
        return {"test_loss": float(ce(logits, yte)), "test_accuracy": float((logits.argmax(1) == yte).float().mean())}

    hist = fit(model, opt, TensorBatches([xtr, ytr], batch, generator=gen), lambda m, b: ce(m(b[0]), b[1]),
               epochs, evaluate=evaluate, desc=f"har {kind}")
    pred = predict(model, xte).cpu().numpy()
    actual = yte.cpu().numpy()
    cm = confusion_matrix(actual, pred, len(ACTIVITIES))
    metrics = {
        "model": kind,
        "accuracy": float((pred == actual).mean()),
        "params": n_params(model),
        "per_class_accuracy": per_class_accuracy(cm, ACTIVITIES),
        "train_windows": int(train.sum()), "test_windows": int(test.sum()),
        "epochs_run": hist.epochs_run, "diverged": hist.diverged, "train_seconds": round(hist.seconds, 1),
    }
    save_torch({"model": kind, "state_dict": model.state_dict(), "mean": torch.from_numpy(mean),
                "std": torch.from_numpy(std)}, f"data/models/{FAMILY}/har_{kind}.pt")
    with atomic_dir(PLOTS_ROOT / FAMILY / f"har_{kind}") as out:
        write_table_csv(out / "curves.csv", hist.rows)
        write_table_csv(out / "confusion.csv", confusion_rows(actual, pred, ACTIVITIES))
        plot_confusion(cm, ACTIVITIES, titled(f"HAR {kind}: test confusion", source), out / "confusion.png")
        fig, axes = new_figure(ncols=2)
        ep = [r["epoch"] for r in hist.rows]
        axes[0, 0].plot(ep, [r["train_loss"] for r in hist.rows], label="train")
        axes[0, 0].plot(ep, [r.get("test_loss") for r in hist.rows], label="test")
        axes[0, 0].set_xlabel("epoch"), axes[0, 0].set_ylabel("cross-entropy"), axes[0, 0].legend()
        axes[0, 1].plot(ep, [r.get("test_accuracy") for r in hist.rows])
        axes[0, 1].set_xlabel("epoch"), axes[0, 1].set_ylabel("test accuracy")
        fig.suptitle(titled(f"HAR {kind} ({metrics['params']:,} parameters)", source))
        save_figure(fig, out / "curves.png")
    write_metrics(FAMILY, f"har_{kind}", metrics, source)
    log.info("HAR %s: test accuracy %.3f with %d parameters", kind, metrics["accuracy"], metrics["params"])


if __name__ == "__main__":
    run_stage(main, "signals_har")
