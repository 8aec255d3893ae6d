"""mnist_train_mlp: the 784→1024×5→10 baseline; per-epoch curves; saves data/models/mnist/mlp.pt."""

import logging

from dlsys.core import load_params, device_from_params, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.models.mlp import MLP, config_from_params, save_mlp
from dlsys.models.mnist_task import MODEL_PATH, TrainConfig, evaluate, load_mnist_tensors, train_classifier
from dlsys.plots import new_figure, save_figure, titled

log = logging.getLogger("dlsys.mnist_train_mlp")


def main() -> None:
    p = load_params()
    cfg = config_from_params(p.sub("mnist.mlp"))
    tc = TrainConfig.from_params(p.sub("mnist.train"))
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    data = load_mnist_tensors(device)

    model = MLP(cfg, generator=gen).to(device)
    hist = train_classifier(model, data, tc, gen, desc="mnist mlp")
    final = evaluate(model, data.x_test, data.y_test)
    n_params = sum(t.numel() for t in model.parameters())
    n_seen = len(data.x_train) * hist.epochs_run
    save_mlp(model, MODEL_PATH, extra={"test_acc": final["acc"]})
    write_metrics("mnist", "train_mlp", {
        "test_acc": final["acc"], "test_loss": final["loss"],
        "train_loss": hist.rows[-1]["train_loss"], "epochs": hist.epochs_run,
        "diverged": hist.diverged, "n_params": n_params, "n_train": len(data.x_train),
        "n_test": len(data.x_test), "train_seconds": round(hist.seconds, 2),
        "samples_per_second": round(n_seen / max(hist.seconds, 1e-9), 1),
        "epoch_seconds_mean": round(sum(hist.epoch_seconds) / len(hist.epoch_seconds), 3),
    }, data.source)

    rows = [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc")} for r in hist.rows]
    with atomic_dir(PLOTS_ROOT / "mnist" / "train_mlp") as out:
        write_table_csv(out / "curves.csv", rows)
        fig, ax = new_figure(2)
        ep = [r["epoch"] for r in rows]
        ax[0, 0].plot(ep, [r["train_loss"] for r in rows], "o-", label="train loss")
        ax[0, 0].plot(ep, [r["test_loss"] for r in rows], "s-", label="test loss")
        ax[0, 0].set(xlabel="epoch", ylabel="cross-entropy")
        ax[0, 0].legend()
        ax[0, 1].plot(ep, [100 * r["test_acc"] for r in rows], "o-")
        ax[0, 1].set(xlabel="epoch", ylabel="test accuracy (%)")
        fig.suptitle(titled(f"MLP 784-1024x5-10: test acc {100 * final['acc']:.2f}%", data.source))
        save_figure(fig, out / "curves.png")
    log.info("test accuracy %.4f (%d params, %.1f s)", final["acc"], n_params, hist.seconds)


if __name__ == "__main__":
    run_stage(main, "mnist_train_mlp")
