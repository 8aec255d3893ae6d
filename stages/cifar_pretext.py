"""cifar_pretext: the tiny CNN with a 3-way head learns the rotation pretext on the unlabelled images.

Every training image but the last `n_labelled` (labels ignored) appears upright (0), upside down (1)
and rotated 90° counter-clockwise (2). Pretext accuracy is measured on the test images' rotations.
"""

import torch

from dlsys.core import save_torch, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.features.augment import PRETEXT_NAMES, labelled_split, rotation_pretext, to_signed
from dlsys.models.cifar_cnn import build_model
from dlsys.training import TensorBatches, fit

from cifar_common import FAMILY, accuracy, cross_entropy, load_unit, log, setup


def main() -> None:
    s = setup()
    p = s.params.sub("cifar")
    n_labelled = p.int("ssl.n_labelled", lo=1)
    epochs = p.int("pretext.epochs", lo=1)
    batch_size = p.int("pretext.batch_size", lo=1)
    lr = p.float("pretext.lr", lo=0.0)
    eval_batch = p.int("eval_batch", lo=1)
    model = build_model(p.sub("model"), n_classes=len(PRETEXT_NAMES)).to(s.device)

    x, _, x_te, _, source, _ = load_unit(s.device)
    pretext_idx, _ = labelled_split(len(x), n_labelled)
    xp, yp = rotation_pretext(x[torch.as_tensor(pretext_idx, device=s.device)])
    xp = to_signed(xp)
    xt, yt = rotation_pretext(x_te)
    xt = to_signed(xt)
    del x, x_te

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = fit(model, opt, TensorBatches([xp, yp], batch_size, generator=s.generator), cross_entropy, epochs,
               desc="cifar_pretext", evaluate=lambda m, _e: {"test_rotation_acc": accuracy(m, xt, yt, eval_batch)})
    save_torch({"state_dict": model.state_dict(), "n_classes": len(PRETEXT_NAMES)},
               f"data/models/{FAMILY}/pretext.pt")
    with atomic_dir(PLOTS_ROOT / FAMILY / "pretext") as tmp:
        write_table_csv(tmp / "curve.csv", [{"epoch": r["epoch"], "train_loss": r["train_loss"],
                                              "test_rotation_acc": r.get("test_rotation_acc")} for r in hist.rows])
    final = hist.rows[-1].get("test_rotation_acc")
    write_metrics(FAMILY, "pretext", {
        "final_test_rotation_acc": final, "chance": 1.0 / len(PRETEXT_NAMES), "epochs": hist.epochs_run,
        "n_pretext_images": len(xp), "diverged": hist.diverged, "seconds": round(hist.seconds, 1),
        "samples_per_s": round(len(xp) * hist.epochs_run / max(hist.seconds, 1e-9)),
    }, source)
    log.info("pretext: rotation accuracy on test images %.4f after %d epochs", final or float("nan"), hist.epochs_run)


if __name__ == "__main__":
    run_stage(main, "cifar_pretext")
