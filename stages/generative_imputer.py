"""generative_imputer --lam λ: a GAN that draws a whole digit around a given centre patch.

Condition = the centre patch x[9:19, 9:19] flattened (100-d) ⊕ 100-d noise → generator; the
discriminator sees full images only. Generator loss = adversarial + λ·MSE(centre patch of the
output, the condition) (pixels in [-1, 1]); λ = 0 lets the generator ignore the patch.

Outputs (λ as written on the command line): data/models/generative/imputer_lam<λ>.pt,
metrics/generative/imputer_lam<λ>.json (on the test set: centre-patch MSE in [0, 1] pixel
units, and the fraction of generated digits the MNIST baseline classifies as the ground-truth label),
plots/generative/imputer_lam<λ>/ (training curves, generated digits beside the ground truth).
"""

import argparse
import logging
from pathlib import Path

import torch

from dlsys.core import (UserError, atomic_dir, load_params, device_from_params, save_torch, seed_everything,
                        write_metrics, write_table_csv)
from dlsys.core.outputs import PLOTS_ROOT
from dlsys.core.stage import run_stage
from dlsys.data.mnist import load_mnist
from dlsys.evaluation.generated import predict_labels
from dlsys.models.gan import Discriminator, Generator, centre_patch, patch_penalty, to_tanh_range, to_unit_range
from dlsys.models.mlp import load_mlp_classifier
from dlsys.plots import image_grid, new_figure, save_figure, titled
from dlsys.training import TensorBatches
from dlsys.training.gan import train_gan

log = logging.getLogger("dlsys.generative_imputer")
RAW = Path("data/raw/mnist")
CLASSIFIER = Path("data/models/mnist/mlp.pt")
FAMILY = "generative"


@torch.no_grad()
def impute(G: Generator, x: torch.Tensor, lo: int, size: int, batch_size: int = 4096) -> torch.Tensor:
    """Generated images ([-1, 1], (N, 784)) conditioned on the centre patches of x ([-1, 1])."""
    out = []
    for i in range(0, len(x), batch_size):
        cond = centre_patch(x[i:i + batch_size], lo, size)
        out.append(G(torch.randn(len(cond), G.noise_dim, device=x.device), cond))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lam", required=True, help="weight of the centre-patch MSE term")
    args = ap.parse_args()
    try:
        lam = float(args.lam)
    except ValueError:
        raise UserError(f"--lam must be a number, got {args.lam!r}") from None
    if not lam >= 0:
        raise UserError(f"--lam must be >= 0, got {args.lam!r}")
    step = f"imputer_lam{args.lam}"

    p = load_params()
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    c = p.sub("imputer")
    lo, size = c.int("patch_lo", lo=0, hi=27), c.int("patch_size", lo=1, hi=28)
    if lo + size > 28:
        raise UserError(f"params.yaml: imputer.patch_lo + imputer.patch_size must be <= 28, got {lo + size}")
    noise_dim = c.int("noise_dim", lo=1)
    g_hidden = c.list("g_hidden", item_type=int, min_len=1, lo=1)
    d_hidden = c.list("d_hidden", item_type=int, min_len=1, lo=1)
    dropout, slope = c.float("d_dropout", lo=0, hi=0.95), c.float("d_leaky_slope", lo=0, hi=1)
    g_lr, d_lr, beta1 = c.float("g_lr", lo=0, hi=1), c.float("d_lr", lo=0, hi=1), c.float("beta1", lo=0, hi=0.999)
    epochs, batch_size, n_show = c.int("epochs", lo=1), c.int("batch_size", lo=1), c.int("n_show", lo=1)

    data = load_mnist(RAW)
    classifier = load_mlp_classifier(CLASSIFIER, device)
    x_train = to_tanh_range(torch.from_numpy(data.x_train).float().div_(255.0).flatten(1)).to(device)
    x_test = to_tanh_range(torch.from_numpy(data.x_test).float().div_(255.0).flatten(1)).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)
    cond_test01 = to_unit_range(centre_patch(x_test, lo, size))

    G = Generator(noise_dim, size * size, g_hidden).to(device)
    D = Discriminator(0, d_hidden, dropout, slope).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=g_lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=d_lr, betas=(beta1, 0.999))

    def real(batch):
        return batch[0], None

    def fake(batch):
        cond = centre_patch(batch[0], lo, size)
        out = G(torch.randn(len(cond), noise_dim, device=device), cond)
        return out, None, (lam * patch_penalty(out, cond, lo, size) if lam > 0 else None)

    def patch_mse01(generated: torch.Tensor) -> float:
        return float(((to_unit_range(centre_patch(generated, lo, size)) - cond_test01) ** 2).mean())

    history = train_gan(G, D, opt_g, opt_d, TensorBatches([x_train], batch_size, generator=gen), real, fake,
                        epochs, evaluate=lambda _e: {"test_patch_mse": patch_mse01(impute(G, x_test, lo, size))},
                        desc=f"imputer λ={args.lam}")
    G.eval()
    save_torch({"config": {"lam": lam, "patch_lo": lo, "patch_size": size, "noise_dim": noise_dim,
                           "g_hidden": g_hidden, "d_hidden": d_hidden},
                "generator": {k: t.cpu() for k, t in G.state_dict().items()},
                "discriminator": {k: t.cpu() for k, t in D.state_dict().items()}},
               Path("data/models/generative") / f"imputer_lam{args.lam}.pt")

    generated = impute(G, x_test, lo, size)
    gen_label = float((predict_labels(classifier, to_unit_range(generated)) == y_test).float().mean())
    truth_label = float((predict_labels(classifier, to_unit_range(x_test)) == y_test).float().mean())
    # Reference: the patch error of an imputer that ignores its condition (another digit's centre).
    shuffled = to_unit_range(centre_patch(x_test[torch.randperm(len(x_test), generator=gen).to(device)], lo, size))
    last = history.rows[-1]
    write_metrics(FAMILY, step, {
        "lambda": lam, "centre_patch_mse": patch_mse01(generated),
        "centre_patch_mse_other_digit": float(((shuffled - cond_test01) ** 2).mean()),
        "label_fraction": gen_label, "classifier_accuracy_on_truth": truth_label,
        "d_acc_real": last.get("d_acc_real"), "d_acc_fake": last.get("d_acc_fake"),
        "epochs_run": history.epochs_run, "diverged": history.diverged, "diverged_at": history.diverged_at,
        "train_seconds": round(history.seconds, 2),
    }, data.source)
    log.info("λ=%s: centre-patch MSE %.4f, classified as the ground-truth label %.3f", args.lam,
             patch_mse01(generated), gen_label)

    with atomic_dir(PLOTS_ROOT / FAMILY / step) as out:
        keys = ("epoch", "d_acc_real", "d_acc_fake", "d_loss", "g_loss", "g_penalty", "test_patch_mse")
        write_table_csv(out / "training.csv", [{k: r.get(k) for k in keys} for r in history.rows])
        fig, axes = new_figure(2)
        ep = [r["epoch"] for r in history.rows]
        for name in ("d_acc_real", "d_acc_fake"):
            axes[0][0].plot(ep, [r.get(name) for r in history.rows], label=name)
        axes[0][0].set(xlabel="epoch", ylabel="discriminator accuracy", ylim=(0, 1.02))
        axes[0][0].legend()
        axes[0][1].plot(ep, [r.get("test_patch_mse") for r in history.rows])
        axes[0][1].set(xlabel="epoch", ylabel="test centre-patch MSE ([0, 1] pixels)")
        fig.suptitle(titled(f"Imputer GAN, λ = {args.lam}", data.source))
        save_figure(fig, out / "training.png")
        show = x_test[:n_show]
        masked = torch.full_like(show, -1.0).reshape(-1, 28, 28)
        masked[:, lo:lo + size, lo:lo + size] = show.reshape(-1, 28, 28)[:, lo:lo + size, lo:lo + size]
        rows = [show, masked.flatten(1), impute(G, show, lo, size), impute(G, show, lo, size)]
        imgs = [img for r in rows for img in to_unit_range(r).reshape(-1, 28, 28).cpu().numpy()]
        save_figure(image_grid(imgs, len(rows), n_show,
                               titled(f"λ = {args.lam}: truth, its centre patch, two imputations "
                                      f"(label kept: {gen_label:.0%})", data.source),
                               row_labels=["truth", "patch", "generated", "generated"]), out / "samples.png")


if __name__ == "__main__":
    run_stage(main, "generative_imputer")
