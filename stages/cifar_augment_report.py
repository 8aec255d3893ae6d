"""cifar_augment_report: one overlay of baseline vs augmented validation accuracy, and the gain."""

import logging

from dlsys.core import load_params, write_metrics
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.data.registry import dataset_source
from dlsys.plots import new_figure, save_figure, titled

from cifar_common import FAMILY, RAW, read_curve

log = logging.getLogger("dlsys.cifar.report")


def main() -> None:
    load_params()  # fail early outside the repository root
    source = dataset_source(RAW)
    fig, ax = new_figure()
    best = {}
    for variant in ("baseline", "augmented"):
        ep, acc = read_curve(PLOTS_ROOT / FAMILY / f"train_{variant}" / "curve.csv", "val_acc")
        ax[0, 0].plot(ep, acc, label=variant)
        best[variant] = max(acc) if acc else None
    ax[0, 0].set(xlabel="epoch", ylabel="validation accuracy",
                 title=titled("CIFAR-10 tiny CNN: augmentation study", source))
    ax[0, 0].legend()
    with atomic_dir(PLOTS_ROOT / FAMILY / "augment_compare") as tmp:
        save_figure(fig, tmp / "val_accuracy.png")
    gain = None if None in best.values() else best["augmented"] - best["baseline"]
    write_metrics(FAMILY, "augment_compare", {"best_val_acc_baseline": best["baseline"],
                                              "best_val_acc_augmented": best["augmented"],
                                              "augmented_gain": gain}, source)
    log.info("best val acc: baseline %s, augmented %s (gain %s)", best["baseline"], best["augmented"], gain)


if __name__ == "__main__":
    run_stage(main, "cifar_augment_report")
