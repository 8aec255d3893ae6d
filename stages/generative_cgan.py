"""generative_cgan: a conditional GAN on MNIST (noise ⊕ one-hot label), scored by the MNIST baseline.

Generator 110 → 200 → 400 → 784 (ReLU, tanh); discriminator 794 → 400 → 200 → 100 → 1 (dropout,
logistic output). Each step: B real images with their one-hots and B class-balanced fakes with the
one-hots that generated them, pixels in [-1, 1]. With `cgan.mismatch_weight` > 0 the discriminator is
also shown the B reals with a wrong one-hot as fakes (matching-aware discriminator, Reed et al. 2016):
without it the generator learnt to draw digits but largely ignored the label (65% class consistency
after 100 epochs); with it, it must draw the digit it was asked for.

Outputs: data/models/generative/cgan.pt, metrics/generative/cgan.json (the fraction of generated
digits the MNIST baseline classifies as their conditioning label, overall and per class),
plots/generative/cgan/ (discriminator accuracy on real and fake per epoch, the 10×10 grid,
the per-class table).
"""

import logging
from pathlib import Path

import torch

from dlsys.core import (atomic_dir, device_from_params, load_params, save_torch, seed_everything, write_metrics,
                        write_table_csv)
from dlsys.core.outputs import PLOTS_ROOT
from dlsys.core.stage import run_stage
from dlsys.data.mnist import load_mnist
from dlsys.evaluation.generated import label_agreement, predict_labels
from dlsys.models.gan import (Discriminator, Generator, balanced_labels, one_hot, to_tanh_range, to_unit_range,
                              wrong_labels)
from dlsys.models.mlp import load_mlp_classifier
from dlsys.plots import image_grid, new_figure, save_figure, titled
from dlsys.training import TensorBatches
from dlsys.training.gan import train_gan

log = logging.getLogger("dlsys.generative_cgan")
RAW = Path("data/raw/mnist")
CLASSIFIER = Path("data/models/mnist/mlp.pt")
MODEL = Path("data/models/generative/cgan.pt")
FAMILY, STEP = "generative", "cgan"
N_CLASSES = 10


@torch.no_grad()
def generate(generator: Generator, labels: torch.Tensor) -> torch.Tensor:
    """Generated digits for `labels` from fresh noise, pixels in [0, 1], (N, 784)."""
    z = torch.randn(len(labels), generator.noise_dim, device=labels.device)
    return to_unit_range(generator(z, one_hot(labels, N_CLASSES)))


def main() -> None:
    p = load_params()
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    c = p.sub("cgan")
    noise_dim = c.int("noise_dim", lo=1)
    g_hidden = c.list("g_hidden", item_type=int, min_len=1, lo=1)
    d_hidden = c.list("d_hidden", item_type=int, min_len=1, lo=1)
    dropout, slope = c.float("d_dropout", lo=0, hi=0.95), c.float("d_leaky_slope", lo=0, hi=1)
    g_lr, d_lr, beta1 = c.float("g_lr", lo=0, hi=1), c.float("d_lr", lo=0, hi=1), c.float("beta1", lo=0, hi=0.999)
    mismatch_weight = c.float("mismatch_weight", lo=0)
    epochs, batch_size = c.int("epochs", lo=1), c.int("batch_size", lo=N_CLASSES)
    per_class, per_class_epoch = c.int("eval_per_class", lo=1), c.int("eval_per_class_epoch", lo=0)

    data = load_mnist(RAW)
    classifier = load_mlp_classifier(CLASSIFIER, device)
    x_train = to_tanh_range(torch.from_numpy(data.x_train).float().div_(255.0).flatten(1)).to(device)
    y_train = torch.from_numpy(data.y_train).to(device)
    x_test01 = torch.from_numpy(data.x_test).float().div_(255.0).flatten(1).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)

    G = Generator(noise_dim, N_CLASSES, g_hidden).to(device)
    D = Discriminator(N_CLASSES, d_hidden, dropout, slope).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=g_lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=d_lr, betas=(beta1, 0.999))

    def real(batch):
        return batch[0], one_hot(batch[1], N_CLASSES)

    def fake(batch):
        labels = balanced_labels(len(batch[0]), N_CLASSES, gen, device)
        cond = one_hot(labels, N_CLASSES)
        return G(torch.randn(len(labels), noise_dim, device=device), cond), cond, None

    def mismatched(batch):
        return batch[0], one_hot(wrong_labels(batch[1], N_CLASSES, gen), N_CLASSES)

    epoch_labels = torch.arange(N_CLASSES, device=device).repeat_interleave(per_class_epoch)

    def on_epoch(_epoch) -> dict:
        if not per_class_epoch:
            return {}
        return {"class_consistency": label_agreement(predict_labels(classifier, generate(G, epoch_labels)),
                                                     epoch_labels, N_CLASSES)["fraction"]}

    history = train_gan(G, D, opt_g, opt_d, TensorBatches([x_train, y_train], batch_size, generator=gen),
                        real, fake, epochs, evaluate=on_epoch, desc="cgan",
                        mismatched=mismatched, mismatch_weight=mismatch_weight)
    G.eval()
    save_torch({"config": {"noise_dim": noise_dim, "g_hidden": g_hidden, "d_hidden": d_hidden,
                           "d_dropout": dropout, "d_leaky_slope": slope},
                "generator": {k: t.cpu() for k, t in G.state_dict().items()},
                "discriminator": {k: t.cpu() for k, t in D.state_dict().items()}}, MODEL)

    labels = torch.arange(N_CLASSES, device=device).repeat_interleave(per_class)
    scores = label_agreement(predict_labels(classifier, generate(G, labels)), labels, N_CLASSES)
    baseline_acc = float((predict_labels(classifier, x_test01) == y_test).float().mean())
    last = history.rows[-1]
    write_metrics(FAMILY, STEP, {
        "class_consistency": scores["fraction"], "n_generated": len(labels),
        "per_class_consistency": {str(r["label"]): r["fraction"] for r in scores["per_class"]},
        "classifier_test_accuracy": baseline_acc,
        "d_acc_real": last.get("d_acc_real"), "d_acc_fake": last.get("d_acc_fake"),
        "d_acc_mismatch": last.get("d_acc_mismatch"), "mismatch_weight": mismatch_weight,
        "d_loss": last.get("d_loss"), "g_loss": last.get("g_loss"),
        "epochs_run": history.epochs_run, "diverged": history.diverged, "diverged_at": history.diverged_at,
        "train_seconds": round(history.seconds, 2),
    }, data.source)
    log.info("class consistency of generated digits: %.3f (baseline on real test digits: %.3f)",
             scores["fraction"], baseline_acc)

    with atomic_dir(PLOTS_ROOT / FAMILY / STEP) as out:
        keys = ("epoch", "d_acc_real", "d_acc_fake", "d_acc_mismatch", "d_loss", "g_loss", "class_consistency")
        write_table_csv(out / "training.csv", [{k: r.get(k) for k in keys if k in r} for r in history.rows])
        write_table_csv(out / "class_consistency.csv", [{k: v for k, v in r.items()} for r in scores["per_class"]])
        fig, axes = new_figure(2)
        ep = [r["epoch"] for r in history.rows]
        ax = axes[0][0]
        ax.plot(ep, [r.get("d_acc_real") for r in history.rows], label="real")
        ax.plot(ep, [r.get("d_acc_fake") for r in history.rows], label="fake")
        if mismatch_weight > 0:
            ax.plot(ep, [r.get("d_acc_mismatch") for r in history.rows], label="real, wrong label")
        ax.set(xlabel="epoch", ylabel="discriminator accuracy", ylim=(0, 1.02), title="discriminator")
        ax.legend()
        ax = axes[0][1]
        ax.plot(ep, [r.get("d_loss") for r in history.rows], label="D loss")
        ax.plot(ep, [r.get("g_loss") for r in history.rows], label="G loss")
        if per_class_epoch:
            ax.plot(ep, [r.get("class_consistency") for r in history.rows], label="class consistency")
        ax.set(xlabel="epoch", title="losses and class consistency")
        ax.legend()
        fig.suptitle(titled("Conditional GAN convergence", data.source))
        save_figure(fig, out / "convergence.png")
        grid_labels = torch.arange(N_CLASSES, device=device).repeat_interleave(N_CLASSES)
        grid = generate(G, grid_labels).reshape(-1, 28, 28).cpu().numpy()
        save_figure(image_grid(list(grid), N_CLASSES, N_CLASSES,
                               titled(f"cGAN samples, one row per label (classified as the label: "
                                      f"{scores['fraction']:.1%})", data.source),
                               row_labels=[str(k) for k in range(N_CLASSES)]), out / "samples.png")


if __name__ == "__main__":
    run_stage(main, "generative_cgan")
