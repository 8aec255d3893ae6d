"""Generative models: a VAE on rotated sevens, a conditional GAN and a centre-patch imputer on MNIST.

Stages (params group `generative.*`, tests in tests/tasks/test_generative.py and
tests/stages/test_generative_e2e.py):
- `generative_vae` → `run_vae`: a K-unit VAE (models/vae.py) on the rotated sevens; loss = BCE + KL, both
  logged per epoch as named loss terms; latent traversals; which latent unit (or plane of two) encodes
  the rotation, by Spearman ρ with the angle (evaluation/latent_effects.py).
- `generative_cgan` → `run_cgan`: a conditional GAN (noise ⊕ one-hot, models/gan.py) trained by the
  generic adversarial step (training/gan.py), optionally with a matching-aware discriminator; scored by
  the MNIST baseline classifier (evaluation/generated.py).
- `generative_imputer@{λ}` → `run_imputer`: a GAN that draws a whole digit around a given centre patch;
  generator loss = adversarial + λ·MSE(centre patch, condition).

The cGAN and imputer are scored by the baseline MLP that `mnist_train_mlp` writes; it is read through
`dlsys.models.mlp.load_mlp_classifier`, which refuses a baseline whose training diverged.
Model selection: every model here is the final epoch's (no curve is used to choose one); every metrics
file says so. A run whose loss or weights turn non-finite is recorded as diverged: curves drawn, the
model saved marked diverged, nothing scored from NaN weights, exit 0 with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlsys.core.context import MODELS_ROOT, StageContext
from dlsys.core.errors import UserError
from dlsys.core.outputs import write_table_csv
from dlsys.core.params import Params
from dlsys.data.mnist import load_mnist
from dlsys.data.registry import raw_dir
from dlsys.data.sevens import TRUE_ANGLES, load_sevens
from dlsys.evaluation.classification import accuracy
from dlsys.evaluation.generated import label_agreement, predict_labels
from dlsys.evaluation.latent_effects import axis_tilt, latent_effect, latent_plane_effect, spearman_rho
from dlsys.models.gan import (Discriminator, Generator, balanced_labels, centre_patch, one_hot, patch_penalty,
                              to_tanh_range, to_unit_range, wrong_labels)
from dlsys.models.mlp import load_mlp_classifier
from dlsys.models.vae import VAE, kl_divergence, reconstruction_bce, traversal_codes, vae_terms
from dlsys.plots import image_grid, new_figure, save_figure, titled
from dlsys.plots.history import plot_history
from dlsys.training import EpochLog, TensorBatches, fit
from dlsys.training.gan import train_gan

log = logging.getLogger("dlsys.generative")

# The MNIST baseline written by mnist_train_mlp (a dvc.yaml dep of the cGAN and imputer stages).
CLASSIFIER = MODELS_ROOT / "mnist" / "mlp.pt"
N_CLASSES = 10
SIDE = 28
SELECTION = "final epoch"


def _group(p: Params, name: str) -> Params:
    return p.sub("generative").sub(name)


def _warn_diverged(history: EpochLog, what: str, group: str) -> None:
    at = f"at epoch {history.diverged_at}" if history.diverged else "(non-finite weights)"
    log.warning("%s diverged %s: metrics record it, the model is saved marked diverged and is not scored; "
                "lower the learning rate (params.yaml: generative.%s)", what, at, group)


def _divergence(history: EpochLog, ok: bool) -> dict:
    return {"epochs_run": history.epochs_run, "diverged": not ok, "diverged_at": history.diverged_at}


def _note_png(path: Path, text: str, source: str) -> None:
    """A figure that says why there is nothing to draw (a diverged run has no samples worth showing)."""
    fig, ax = new_figure(1)
    ax[0, 0].text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax[0, 0].transAxes)
    ax[0, 0].set_axis_off()
    fig.suptitle(titled("nothing to draw", source))
    save_figure(fig, path)


# ============================================================================ VAE on the rotated sevens

@dataclass(frozen=True)
class VaeRecipe:
    """params `generative.vae`."""
    latent_dim: int
    hidden: list[int]
    epochs: int
    batch_size: int
    lr: float
    traverse_min: float
    traverse_max: float
    traverse_step: float

    @classmethod
    def from_params(cls, p: Params) -> "VaeRecipe":
        v = _group(p, "vae")
        r = cls(latent_dim=v.int("latent_dim", lo=1, hi=4),  # course: K < 5
                hidden=v.list("hidden", item_type=int, min_len=1, lo=1), epochs=v.int("epochs", lo=1),
                batch_size=v.int("batch_size", lo=1), lr=v.float("lr", gt=0),
                traverse_min=v.float("traverse_min"), traverse_max=v.float("traverse_max"),
                traverse_step=v.float("traverse_step", lo=1e-6))
        if r.traverse_max <= r.traverse_min:
            raise UserError(f"params.yaml: 'generative.vae.traverse_max' ({r.traverse_max}) must exceed "
                            f"'generative.vae.traverse_min' ({r.traverse_min})")
        return r

    def traverse_values(self) -> torch.Tensor:
        return torch.arange(self.traverse_min, self.traverse_max + self.traverse_step / 2, self.traverse_step)


def vae_loss(model: VAE, batch) -> dict:
    """Mean BCE + mean KL over the batch, with both terms named so that `fit` logs them per epoch."""
    bce, kl = vae_terms(model, batch[0])
    return {"loss": bce + kl, "bce": bce, "kl": kl}


@torch.no_grad()
def evaluate_vae(model: VAE, x: torch.Tensor, batch_size: int) -> dict:
    """Mean BCE and KL per image on held-out data (one reparameterised sample each)."""
    bce = kl = 0.0
    for i in range(0, len(x), batch_size):
        logits, mu, logvar = model(x[i:i + batch_size])
        bce += float(reconstruction_bce(logits, x[i:i + batch_size]).sum())
        kl += float(kl_divergence(mu, logvar).sum())
    return {"test_bce": bce / len(x), "test_kl": kl / len(x)}


def rotation_analysis(mu_test: np.ndarray, images: np.ndarray, true_angles: np.ndarray | None,
                      angles_method: str | None = None) -> dict:
    """Which latent unit (and which plane of two) carries the rotation. Uses the applied angles when the
    data has them (the synthetic sidecar, or recovered from the real sevens' MNIST sources), else each
    image's principal-axis tilt; with applied angles, also how well the tilt estimate tracks them and the
    rotation unit's ρ with the tilt."""
    estimated = axis_tilt(images)
    if true_angles is not None:
        angles, angle_source = true_angles, angles_method or TRUE_ANGLES
    else:
        angles, angle_source = estimated, "principal-axis tilt from pixel moments"
    effect = latent_effect(mu_test, angles)
    plane = latent_plane_effect(mu_test, angles)
    out = {"angle_source": angle_source, "rotation_dim": effect["best_dim"], "rotation_rho": effect["rho"],
           "rotation_abs_rho": effect["abs_rho"], "rho_per_dim": effect["rho_per_dim"],
           "rotation_plane_dims": plane["dims"], "rotation_plane_rho": plane["rho"]}
    if true_angles is not None:
        tilt_rhos = latent_effect(mu_test, estimated)["rho_per_dim"]
        out["axis_tilt_rho_vs_true_angle"] = spearman_rho(estimated, true_angles)
        out["rotation_dim_rho_vs_axis_tilt"] = tilt_rhos[effect["best_dim"]] if effect["best_dim"] is not None else None
        out["rho_per_dim_vs_axis_tilt"] = tilt_rhos
    return {"metrics": out, "angles": angles, "effect": effect}


def run_vae(ctx: StageContext) -> None:
    """Train the VAE on the sevens; traversals; which latent unit encodes the rotation."""
    r = VaeRecipe.from_params(ctx.params)
    ctx.use_data("sevens")
    data = load_sevens(raw_dir("sevens"))
    x_train = torch.from_numpy(data.train).flatten(1).to(ctx.device)
    x_test = torch.from_numpy(data.test).flatten(1).to(ctx.device)
    model = VAE(r.latent_dim, r.hidden).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=r.lr)
    history = fit(model, optimizer, TensorBatches([x_train], r.batch_size, generator=ctx.generator), vae_loss,
                  r.epochs, evaluate=lambda m, _epoch: evaluate_vae(m, x_test, r.batch_size), desc="vae")
    model.eval()
    ok = ctx.save_checkpoint(ctx.model_path("vae.pt"), model,
                             {"latent_dim": r.latent_dim, "hidden": r.hidden}) and not history.diverged
    ctx.time(train_seconds=round(history.seconds, 2))

    last = history.last
    metrics = {"latent_dim": r.latent_dim, **_divergence(history, ok),
               **{k: last.get(k) for k in ("train_bce", "train_kl", "test_bce", "test_kl")}}
    analysis = None
    if ok:
        with torch.no_grad():
            mu_test = model.encode(x_test)[0].cpu().numpy()
        analysis = rotation_analysis(mu_test, data.test, data.angles_test, data.angles_method)
        metrics.update(analysis["metrics"])
        m = analysis["metrics"]
        log.info("rotation: latent dim %s, Spearman rho %.3f; plane %s, rho %.3f (%s)", m["rotation_dim"],
                 m["rotation_rho"], m["rotation_plane_dims"], m["rotation_plane_rho"], m["angle_source"])
    else:
        _warn_diverged(history, "the VAE", "vae.lr")
    ctx.write_metrics(metrics, selection=SELECTION)

    with ctx.plots() as out:
        result = "diverged" if not ok else f"{history.epochs_run} epochs"
        plot_history(history.rows, out, f"VAE loss terms ({result})", ctx.source, name="losses",
                     panels={"BCE per image": ["train_bce", "test_bce"], "KL per image": ["train_kl", "test_kl"]},
                     diverged_at=history.diverged_at)
        if analysis is None:
            _note_png(out / "traversals.png", "the VAE diverged: no traversals (see losses.png)", ctx.source)
            return
        plot_traversals(model, r.latent_dim, r.traverse_values(), analysis["effect"], ctx.generator, out,
                        ctx.source)
        plot_latent_vs_angle(mu_test, analysis["angles"], analysis["effect"], analysis["metrics"]["angle_source"],
                             out, ctx.source)


@torch.no_grad()
def plot_traversals(model: VAE, latent_dim: int, values: torch.Tensor, effect: dict, gen: torch.Generator,
                    out: Path, source: str) -> None:
    """Per dimension k: the other K−1 coordinates drawn once from N(0, 1), k swept over `values`."""
    device = next(model.parameters()).device
    rows = []
    (out / "traversals").mkdir()
    for k in range(latent_dim):
        codes = traversal_codes(latent_dim, k, values, gen).to(device)
        imgs = list(torch.sigmoid(model.decode(codes)).reshape(-1, SIDE, SIDE).cpu().numpy())
        rows += imgs
        rho = effect["rho_per_dim"][k]
        title = titled(f"latent dim {k} from {values[0]:g} to {values[-1]:g} (Spearman rho with angle {rho:+.2f})",
                       source)
        save_figure(image_grid(imgs, 1, len(values), title), out / "traversals" / f"dim{k}.png")
    labels = [f"z{k} ({effect['rho_per_dim'][k]:+.2f})" for k in range(latent_dim)]
    save_figure(image_grid(rows, latent_dim, len(values),
                           titled(f"VAE latent traversals, {values[0]:g} to {values[-1]:g}", source),
                           row_labels=labels), out / "traversals.png")


def plot_latent_vs_angle(mu: np.ndarray, angles, effect: dict, angle_source: str, out: Path, source: str) -> None:
    k = effect["best_dim"]
    if k is None:
        return
    fig, axes = new_figure(1)
    ax = axes[0][0]
    ax.scatter(np.asarray(angles), mu[:, k], s=4, alpha=0.5)
    ax.set(xlabel=f"angle, degrees ({angle_source.split(':')[0]})", ylabel=f"latent mean z{k}")
    ax.set_title(titled(f"test sevens: z{k} vs rotation, Spearman rho {effect['rho']:+.3f}", source))
    save_figure(fig, out / "latent_vs_angle.png")


# ============================================================================ the two MNIST GANs

@dataclass(frozen=True)
class GanNets:
    """The networks and optimisers shared by the cGAN and the imputer (params `generative.cgan` / `.imputer`)."""
    noise_dim: int
    g_hidden: list[int]
    d_hidden: list[int]
    d_dropout: float
    d_leaky_slope: float
    g_lr: float
    d_lr: float
    beta1: float
    batch_size: int
    epochs: int

    @staticmethod
    def fields_from(g: Params, min_batch: int = 1) -> dict:
        return dict(noise_dim=g.int("noise_dim", lo=1), g_hidden=g.list("g_hidden", item_type=int, min_len=1, lo=1),
                    d_hidden=g.list("d_hidden", item_type=int, min_len=1, lo=1),
                    d_dropout=g.float("d_dropout", lo=0, hi=0.95), d_leaky_slope=g.float("d_leaky_slope", lo=0, hi=1),
                    g_lr=g.float("g_lr", gt=0), d_lr=g.float("d_lr", gt=0), beta1=g.float("beta1", lo=0, hi=0.999),
                    batch_size=g.int("batch_size", lo=min_batch), epochs=g.int("epochs", lo=1))

    def build(self, g_cond: int, d_cond: int, device: torch.device):
        """Generator, discriminator and their Adam optimisers (built in this order: the seeded RNG draws
        the generator's initial weights first)."""
        G = Generator(self.noise_dim, g_cond, self.g_hidden).to(device)
        D = Discriminator(d_cond, self.d_hidden, self.d_dropout, self.d_leaky_slope).to(device)
        opt_g = torch.optim.Adam(G.parameters(), lr=self.g_lr, betas=(self.beta1, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=self.d_lr, betas=(self.beta1, 0.999))
        return G, D, opt_g, opt_d

    def net_config(self) -> dict:
        return {"noise_dim": self.noise_dim, "g_hidden": self.g_hidden, "d_hidden": self.d_hidden,
                "d_dropout": self.d_dropout, "d_leaky_slope": self.d_leaky_slope}


@dataclass(frozen=True)
class CganRecipe(GanNets):
    """params `generative.cgan`."""
    mismatch_weight: float = 0.0
    eval_per_class: int = 1
    eval_per_class_epoch: int = 0

    @classmethod
    def from_params(cls, p: Params) -> "CganRecipe":
        c = _group(p, "cgan")
        return cls(**cls.fields_from(c, min_batch=N_CLASSES), mismatch_weight=c.float("mismatch_weight", lo=0),
                   eval_per_class=c.int("eval_per_class", lo=1), eval_per_class_epoch=c.int("eval_per_class_epoch", lo=0))


@dataclass(frozen=True)
class ImputerRecipe(GanNets):
    """params `generative.imputer` (λ, the patch term's weight, is the stage variant)."""
    patch_lo: int = 9
    patch_size: int = 10
    n_show: int = 1

    @classmethod
    def from_params(cls, p: Params) -> "ImputerRecipe":
        c = _group(p, "imputer")
        lo, size = c.int("patch_lo", lo=0, hi=SIDE - 1), c.int("patch_size", lo=1, hi=SIDE)
        if lo + size > SIDE:
            raise UserError(f"params.yaml: generative.imputer.patch_lo + generative.imputer.patch_size must be "
                            f"<= {SIDE}, got {lo + size}")
        return cls(**cls.fields_from(c), patch_lo=lo, patch_size=size, n_show=c.int("n_show", lo=1))


@dataclass
class MnistImages:
    """MNIST as flat float tensors on the device: training pixels in [-1, 1] (the generators' tanh range),
    test pixels in [0, 1] (what the classifier reads)."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test01: torch.Tensor
    y_test: torch.Tensor


def load_mnist_images(ctx: StageContext) -> MnistImages:
    ctx.use_data("mnist")
    data = load_mnist(raw_dir("mnist"))

    def unit(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).float().div_(255.0).flatten(1)

    return MnistImages(x_train=to_tanh_range(unit(data.x_train)).to(ctx.device),
                       y_train=torch.from_numpy(data.y_train).to(ctx.device),
                       x_test01=unit(data.x_test).to(ctx.device), y_test=torch.from_numpy(data.y_test).to(ctx.device))


def save_gan(ctx: StageContext, name: str, G: Generator, D: Discriminator, config: dict) -> bool:
    """Both networks in one checkpoint (state_dict keys `generator.*`, `discriminator.*`); False when any
    weight is non-finite (then the checkpoint is marked diverged)."""
    return ctx.save_checkpoint(ctx.model_path(name), nn.ModuleDict({"generator": G, "discriminator": D}), config)


@torch.no_grad()
def generate(G: Generator, labels: torch.Tensor) -> torch.Tensor:
    """Generated digits for `labels` from fresh noise, pixels in [0, 1], (N, 784)."""
    z = torch.randn(len(labels), G.noise_dim, device=labels.device)
    return to_unit_range(G(z, one_hot(labels, N_CLASSES)))


def run_cgan(ctx: StageContext) -> None:
    """Train the conditional GAN; score its digits with the MNIST baseline, overall and per class."""
    r = CganRecipe.from_params(ctx.params)
    device, gen = ctx.device, ctx.generator
    d = load_mnist_images(ctx)
    classifier = load_mlp_classifier(CLASSIFIER, device)
    G, D, opt_g, opt_d = r.build(N_CLASSES, N_CLASSES, device)

    def real(batch):
        return batch[0], one_hot(batch[1], N_CLASSES)

    def fake(batch):
        labels = balanced_labels(len(batch[0]), N_CLASSES, gen, device)
        cond = one_hot(labels, N_CLASSES)
        return G(torch.randn(len(labels), r.noise_dim, device=device), cond), cond, None

    def mismatched(batch):
        return batch[0], one_hot(wrong_labels(batch[1], N_CLASSES, gen), N_CLASSES)

    epoch_labels = torch.arange(N_CLASSES, device=device).repeat_interleave(r.eval_per_class_epoch)

    def on_epoch(_epoch) -> dict:
        if not r.eval_per_class_epoch:
            return {}
        return {"class_consistency": label_agreement(predict_labels(classifier, generate(G, epoch_labels)),
                                                     epoch_labels, N_CLASSES)["fraction"]}

    history = train_gan(G, D, opt_g, opt_d, TensorBatches([d.x_train, d.y_train], r.batch_size, generator=gen),
                        real, fake, r.epochs, evaluate=on_epoch, desc="cgan",
                        mismatched=mismatched, mismatch_weight=r.mismatch_weight)
    G.eval()
    ok = save_gan(ctx, "cgan.pt", G, D, r.net_config()) and not history.diverged
    ctx.time(train_seconds=round(history.seconds, 2))

    baseline_acc = accuracy(predict_labels(classifier, d.x_test01), d.y_test)
    labels = torch.arange(N_CLASSES, device=device).repeat_interleave(r.eval_per_class)
    scores = label_agreement(predict_labels(classifier, generate(G, labels)), labels, N_CLASSES) if ok else None
    last = history.last
    ctx.write_metrics({
        "class_consistency": scores["fraction"] if ok else None, "n_generated": len(labels) if ok else 0,
        "per_class_consistency": {str(row["label"]): row["fraction"] for row in scores["per_class"]} if ok else None,
        "classifier_test_accuracy": baseline_acc,
        "d_acc_real": last.get("d_acc_real"), "d_acc_fake": last.get("d_acc_fake"),
        "d_acc_mismatch": last.get("d_acc_mismatch"), "mismatch_weight": r.mismatch_weight,
        "d_loss": last.get("d_loss"), "g_loss": last.get("g_loss"), **_divergence(history, ok),
    }, selection=SELECTION)
    if ok:
        log.info("class consistency of generated digits: %.3f (baseline on real test digits: %.3f)",
                 scores["fraction"], baseline_acc)
    else:
        _warn_diverged(history, "the cGAN", "cgan.g_lr / d_lr")

    with ctx.plots() as out:
        accs = ["d_acc_real", "d_acc_fake"] + (["d_acc_mismatch"] if r.mismatch_weight > 0 else [])
        consistency = ["class_consistency"] if r.eval_per_class_epoch else []
        result = "diverged" if not ok else f"{history.epochs_run} epochs"
        plot_history(history.rows, out, f"Conditional GAN convergence ({result})", ctx.source, name="training",
                     panels={"loss": ["d_loss", "g_loss"],
                             "discriminator accuracy, class consistency (%)": accs + consistency},
                     diverged_at=history.diverged_at)
        if not ok:
            _note_png(out / "samples.png", "the cGAN diverged: no samples (see training.png)", ctx.source)
            return
        write_table_csv(out / "class_consistency.csv", [dict(row) for row in scores["per_class"]])
        grid_labels = torch.arange(N_CLASSES, device=device).repeat_interleave(N_CLASSES)
        grid = generate(G, grid_labels).reshape(-1, SIDE, SIDE).cpu().numpy()
        save_figure(image_grid(list(grid), N_CLASSES, N_CLASSES,
                               titled(f"cGAN samples, one row per label (classified as the label: "
                                      f"{scores['fraction']:.1%})", ctx.source),
                               row_labels=[str(k) for k in range(N_CLASSES)]), out / "samples.png")


def parse_lambda(text: str) -> float:
    """The imputer's λ as written in dvc.yaml's foreach (its text names the outputs)."""
    try:
        lam = float(text)
    except ValueError:
        raise UserError(f"λ must be a number, got {text!r}") from None
    if not lam >= 0:
        raise UserError(f"λ must be >= 0, got {text!r}")
    return lam


@torch.no_grad()
def impute(G: Generator, x: torch.Tensor, lo: int, size: int, batch_size: int = 4096) -> torch.Tensor:
    """Generated images ([-1, 1], (N, 784)) conditioned on the centre patches of x ([-1, 1])."""
    out = []
    for i in range(0, len(x), batch_size):
        cond = centre_patch(x[i:i + batch_size], lo, size)
        out.append(G(torch.randn(len(cond), G.noise_dim, device=x.device), cond))
    return torch.cat(out)


def run_imputer(ctx: StageContext) -> None:
    """Train the centre-patch imputer for λ = ctx.variant; patch error and label kept on the test set."""
    lam = parse_lambda(ctx.variant)
    ctx.step = f"imputer_lam{ctx.variant}"
    r = ImputerRecipe.from_params(ctx.params)
    lo, size, device, gen = r.patch_lo, r.patch_size, ctx.device, ctx.generator
    d = load_mnist_images(ctx)
    classifier = load_mlp_classifier(CLASSIFIER, device)
    x_test = to_tanh_range(d.x_test01)
    cond_test01 = to_unit_range(centre_patch(x_test, lo, size))
    G, D, opt_g, opt_d = r.build(size * size, 0, device)

    def real(batch):
        return batch[0], None

    def fake(batch):
        cond = centre_patch(batch[0], lo, size)
        out = G(torch.randn(len(cond), r.noise_dim, device=device), cond)
        return out, None, (lam * patch_penalty(out, cond, lo, size) if lam > 0 else None)

    def patch_mse01(generated: torch.Tensor) -> float:
        return float(((to_unit_range(centre_patch(generated, lo, size)) - cond_test01) ** 2).mean())

    history = train_gan(G, D, opt_g, opt_d, TensorBatches([d.x_train], r.batch_size, generator=gen), real, fake,
                        r.epochs, evaluate=lambda _e: {"test_patch_mse": patch_mse01(impute(G, x_test, lo, size))},
                        desc=f"imputer λ={ctx.variant}")
    G.eval()
    ok = save_gan(ctx, f"{ctx.step}.pt", G, D,
                  {"lam": lam, "patch_lo": lo, "patch_size": size, **r.net_config()}) and not history.diverged
    ctx.time(train_seconds=round(history.seconds, 2))

    truth_label = accuracy(predict_labels(classifier, d.x_test01), d.y_test)
    # Reference: the patch error of an imputer that ignores its condition (another digit's centre).
    shuffled = to_unit_range(centre_patch(x_test[torch.randperm(len(x_test), generator=gen).to(device)], lo, size))
    metrics = {"lambda": lam, "centre_patch_mse": None,
               "centre_patch_mse_other_digit": float(((shuffled - cond_test01) ** 2).mean()),
               "label_fraction": None, "classifier_accuracy_on_truth": truth_label}
    if ok:
        generated = impute(G, x_test, lo, size)
        metrics.update(centre_patch_mse=patch_mse01(generated),
                       label_fraction=accuracy(predict_labels(classifier, to_unit_range(generated)), d.y_test))
        log.info("λ=%s: centre-patch MSE %.4f, classified as the ground-truth label %.3f", ctx.variant,
                 metrics["centre_patch_mse"], metrics["label_fraction"])
    else:
        _warn_diverged(history, f"the imputer (λ = {ctx.variant})", "imputer.g_lr / d_lr")
    last = history.last
    ctx.write_metrics({**metrics, "d_acc_real": last.get("d_acc_real"), "d_acc_fake": last.get("d_acc_fake"),
                       **_divergence(history, ok)}, selection=SELECTION)

    with ctx.plots() as out:
        result = "diverged" if not ok else f"{history.epochs_run} epochs"
        plot_history(history.rows, out, f"Imputer GAN, λ = {ctx.variant} ({result})", ctx.source, name="training",
                     panels={"loss": ["d_loss", "g_loss", "g_penalty"],
                             "discriminator accuracy (%)": ["d_acc_real", "d_acc_fake"],
                             "test centre-patch MSE ([0, 1] pixels)": ["test_patch_mse"]},
                     diverged_at=history.diverged_at)
        if not ok:
            _note_png(out / "samples.png", "the imputer diverged: no samples (see training.png)", ctx.source)
            return
        show = x_test[:r.n_show]
        masked = torch.full_like(show, -1.0).reshape(-1, SIDE, SIDE)
        masked[:, lo:lo + size, lo:lo + size] = show.reshape(-1, SIDE, SIDE)[:, lo:lo + size, lo:lo + size]
        rows = [show, masked.flatten(1), impute(G, show, lo, size), impute(G, show, lo, size)]
        imgs = [img for row in rows for img in to_unit_range(row).reshape(-1, SIDE, SIDE).cpu().numpy()]
        save_figure(image_grid(imgs, len(rows), r.n_show,
                               titled(f"λ = {ctx.variant}: truth, its centre patch, two imputations "
                                      f"(label kept: {metrics['label_fraction']:.0%})", ctx.source),
                               row_labels=["truth", "patch", "generated", "generated"]), out / "samples.png")
