"""cifar_augment: seeded validation hold-out and a check figure of the four augmentation versions.

The augmented training set itself ([originals; min(1.1x, 1); 0.9x; mirrored], 4 × N) is rebuilt in
memory by cifar_train with the same `augment_set` (milliseconds on the device) instead of being stored:
on real data it would be 180,000 float images (2.2 GB) in the DVC cache for nothing.
"""

import logging

import torch

from dlsys.core import save_torch, write_metrics
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.features.augment import AUGMENT_NAMES, augment_set, to_signed, validation_split
from dlsys.plots import image_grid, save_figure, titled

from cifar_common import FAMILY, load_unit, setup

log = logging.getLogger("dlsys.cifar.augment")


def main() -> None:
    s = setup()
    p = s.params.sub("cifar")
    n_val = p.int("n_val", lo=1)
    bright = p.float("augment.bright", lo=1.0)
    dark = p.float("augment.dark", lo=0.0, hi=1.0)
    n_preview = p.int("augment.n_preview", lo=1, hi=20)
    x, y, _, _, source, names = load_unit(torch.device("cpu"))
    train_idx, val_idx = validation_split(len(x), n_val, s.seed)
    save_torch({"train": torch.from_numpy(train_idx), "val": torch.from_numpy(val_idx)},
               f"data/features/{FAMILY}/split.pt")

    xa, ya = augment_set(x[train_idx], y[train_idx], bright, dark)
    signed = to_signed(xa)
    n = len(train_idx)
    pick = torch.arange(min(n_preview, n))
    cells = [xa[k * n + i].permute(1, 2, 0).numpy() for i in pick for k in range(len(AUGMENT_NAMES))]
    fig = image_grid(cells, len(pick), len(AUGMENT_NAMES),
                     titled("augmentations: " + " | ".join(AUGMENT_NAMES), source),
                     row_labels=[names[int(y[train_idx[i]])] for i in pick], cell=1.1)
    with atomic_dir(PLOTS_ROOT / FAMILY / "augment") as tmp:
        save_figure(fig, tmp / "augment_examples.png")
    write_metrics(FAMILY, "augment", {
        "n_train": n, "n_val": len(val_idx), "n_augmented": len(xa),
        "signed_min": float(signed.min()), "signed_max": float(signed.max()),
        "labels_repeated": bool(torch.equal(ya, y[train_idx].repeat(len(AUGMENT_NAMES)))),
    }, source)
    log.info("split: %d train / %d validation; augmented set %d images", n, len(val_idx), len(xa))


if __name__ == "__main__":
    run_stage(main, "cifar_augment")
