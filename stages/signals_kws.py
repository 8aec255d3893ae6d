"""signals_kws: the lecture's log-mel CNN for 12-class keyword spotting, class-weighted, lr drop."""

import logging

import torch

from dlsys.core import load_params, load_torch, device_from_params, save_torch, seed_everything, write_metrics
from dlsys.core import write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.evaluation.classification import (confusion_matrix, confusion_rows, per_class_accuracy,
                                             predict)
from dlsys.plots.confusion import plot_confusion
from dlsys.models.kws_cnn import KwsCNN, class_weights
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training import TensorBatches, fit

log = logging.getLogger("dlsys.signals_kws")
FAMILY, STEP = "signals", "kws"


def main() -> None:
    p = load_params()
    k = p.sub("kws")
    t = k.sub("train")
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    d = load_torch("data/features/signals/kws.pt")
    classes, source = list(d["classes"]), d["source"]
    xtr, ytr = d["train"]["x"].to(device), d["train"]["y"].to(device)
    xva, yva = d["validation"]["x"].to(device), d["validation"]["y"].to(device)
    xte, yte = d["testing"]["x"].to(device), d["testing"]["y"].to(device)

    model = KwsCNN(len(classes), n_mels=xtr.shape[1], filters=tuple(k.list("filters", item_type=int, min_len=1, lo=1)),
                   pooled_blocks=k.int("pooled_blocks", lo=0), dropout=k.float("dropout", lo=0, hi=1)).to(device)
    weights = class_weights(ytr.cpu(), len(classes)).to(device)
    ce = torch.nn.CrossEntropyLoss(weight=weights)
    opt = torch.optim.Adam(model.parameters(), lr=t.float("lr", lo=0))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=t.int("lr_drop_epoch", lo=1),
                                            gamma=t.float("lr_drop_factor", lo=0))

    def evaluate(m, _epoch) -> dict:
        pred = predict(m, xva)
        return {"val_accuracy": float((pred == yva).float().mean())}

    hist = fit(model, opt, TensorBatches([xtr, ytr], t.int("batch_size", lo=1), generator=gen),
               lambda m, b: ce(m(b[0]), b[1]), t.int("epochs", lo=1), evaluate=evaluate, scheduler=sched,
               select="val_accuracy", mode="max", desc="kws")
    pred = predict(model, xte).cpu().numpy()
    actual = yte.cpu().numpy()
    cm = confusion_matrix(actual, pred, len(classes))
    metrics = {
        "test_accuracy": float((pred == actual).mean()),
        "per_class_accuracy": per_class_accuracy(cm, classes),
        "best_val_accuracy": hist.best.get("val_accuracy") if hist.best else None,
        "best_epoch": hist.best.get("epoch") if hist.best else None,
        "class_weights": dict(zip(classes, weights.cpu().tolist())),
        "train_clips": len(ytr), "validation_clips": len(yva), "test_clips": len(yte),
        "epochs_run": hist.epochs_run, "diverged": hist.diverged, "train_seconds": round(hist.seconds, 1),
    }
    save_torch({"classes": classes, "state_dict": model.state_dict()}, f"data/models/{FAMILY}/kws_cnn.pt")
    with atomic_dir(PLOTS_ROOT / FAMILY / STEP) as out:
        write_table_csv(out / "curves.csv", hist.rows)
        write_table_csv(out / "confusion.csv", confusion_rows(actual, pred, classes))
        plot_confusion(cm, classes, titled(f"KWS test confusion (accuracy {metrics['test_accuracy']:.3f})", source),
                       out / "confusion.png")
        fig, axes = new_figure(ncols=2)
        ep = [r["epoch"] for r in hist.rows]
        axes[0, 0].plot(ep, [r["train_loss"] for r in hist.rows])
        axes[0, 0].set_xlabel("epoch"), axes[0, 0].set_ylabel("weighted cross-entropy (train)")
        axes[0, 1].plot(ep, [r.get("val_accuracy") for r in hist.rows])
        axes[0, 1].set_xlabel("epoch"), axes[0, 1].set_ylabel("validation accuracy")
        fig.suptitle(titled("KWS CNN training", source))
        save_figure(fig, out / "curves.png")
    write_metrics(FAMILY, STEP, metrics, source)
    log.info("kws: test accuracy %.3f", metrics["test_accuracy"])


if __name__ == "__main__":
    run_stage(main, "signals_kws")
