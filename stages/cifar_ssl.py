"""cifar_ssl_baseline / cifar_ssl_transfer: the tiny CNN on only the last `n_labelled` training images, full batch.

baseline: from scratch (He init), Adam at `ssl.lr`.
transfer: every pretext weight but the head, a new He-initialised 10-way head; Adam with parameter
groups: `ssl.lr_transferred` for the transferred layers, `ssl.lr` for the head.
Test accuracy every `ssl.eval_every` epochs on the whole test set in large batches. Tensors stay on the
device and the one full batch is reused every epoch (no shuffling needed, no DataLoader).
"""

import argparse

import torch

from dlsys.core import load_torch, save_torch, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.features.augment import labelled_split, to_signed
from dlsys.models.cifar_cnn import build_model, transfer_features, transfer_param_groups
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training import TensorBatches, fit

from cifar_common import FAMILY, accuracy, cross_entropy, every, load_unit, log, read_curve, setup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=("baseline", "transfer"))
    mode = ap.parse_args().mode
    s = setup()
    p = s.params.sub("cifar")
    n_labelled = p.int("ssl.n_labelled", lo=1)
    epochs = p.int("ssl.epochs", lo=1)
    eval_every = p.int("ssl.eval_every", lo=1)
    lr = p.float("ssl.lr", lo=0.0)
    eval_batch = p.int("eval_batch", lo=1)
    model = build_model(p.sub("model"), n_classes=10).to(s.device)
    if mode == "transfer":
        lr_transferred = p.float("ssl.lr_transferred", lo=0.0)
        pretext = load_torch(f"data/models/{FAMILY}/pretext.pt", map_location=s.device)
        copied = transfer_features(pretext["state_dict"], model)
        log.info("transferred %d tensors from the pretext model: %s", len(copied), ", ".join(copied))
        opt = torch.optim.Adam(transfer_param_groups(model, lr_transferred, lr))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)

    x, y, x_te, y_te, source, _ = load_unit(s.device)
    _, lab = labelled_split(len(x), n_labelled)
    lab = torch.as_tensor(lab, device=s.device)
    x_l, y_l = to_signed(x[lab]), y[lab]
    x_te = to_signed(x_te)
    del x

    full = TensorBatches([x_l, y_l], batch_size=len(x_l), shuffle=False)
    hist = fit(model, opt, full, cross_entropy, epochs, desc=f"ssl_{mode}",
               evaluate=every(eval_every, lambda m: {"test_acc": accuracy(m, x_te, y_te, eval_batch)}))
    curve = [{"epoch": r["epoch"], "train_loss": r["train_loss"], "test_acc": r["test_acc"]}
             for r in hist.rows if "test_acc" in r]
    accs = [r["test_acc"] for r in curve]
    save_torch({"state_dict": model.state_dict(), "n_classes": 10}, f"data/models/{FAMILY}/ssl_{mode}.pt")
    with atomic_dir(PLOTS_ROOT / FAMILY / f"ssl_{mode}") as tmp:
        write_table_csv(tmp / "curve.csv", curve)
        if mode == "transfer":
            overlay(tmp / "test_accuracy.png", curve, source)
    epochs_per_s = hist.epochs_run / max(hist.seconds, 1e-9)
    metrics = {"best_test_acc": max(accs) if accs else None, "final_test_acc": accs[-1] if accs else None,
               "epochs": hist.epochs_run, "n_labelled": len(y_l), "n_test": len(y_te),
               "diverged": hist.diverged, "seconds": round(hist.seconds, 1), "epochs_per_s": round(epochs_per_s, 1)}
    if mode == "transfer":
        _, base_acc = read_curve(PLOTS_ROOT / FAMILY / "ssl_baseline" / "curve.csv", "test_acc")
        if base_acc and accs:
            metrics["best_gain_over_baseline"] = max(accs) - max(base_acc)
            metrics["final_gain_over_baseline"] = accs[-1] - base_acc[-1]
    write_metrics(FAMILY, f"ssl_{mode}", metrics, source)
    log.info("ssl_%s: best test acc %s, final %s; %.1f epochs/s", mode, metrics["best_test_acc"],
             metrics["final_test_acc"], epochs_per_s)


def overlay(path, transfer_curve, source) -> None:
    ep, acc = read_curve(PLOTS_ROOT / FAMILY / "ssl_baseline" / "curve.csv", "test_acc")
    fig, ax = new_figure()
    ax[0, 0].plot(ep, acc, label="baseline (from scratch)")
    ax[0, 0].plot([r["epoch"] for r in transfer_curve], [r["test_acc"] for r in transfer_curve],
                  label="transfer (rotation pretext)")
    ax[0, 0].set(xlabel="epoch", ylabel="test accuracy",
                 title=titled("CIFAR-10, few labels: baseline vs transfer", source))
    ax[0, 0].legend()
    save_figure(fig, path)


if __name__ == "__main__":
    run_stage(main, "cifar_ssl")
