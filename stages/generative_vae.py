"""generative_vae: a K-unit VAE on the rotated sevens, latent traversals, and which unit encodes rotation.

Outputs: data/models/generative/vae.pt, metrics/generative/vae.json (BCE and KL per epoch,
the dimension whose latent mean has the largest |Spearman ρ| with the rotation angle on the test
sevens), plots/generative/vae/ (loss curves, one traversal figure per dimension and a combined
one, latent mean vs angle). Angles: the synthetic sidecar's true rotation; for real data each image's
principal-axis angle from its pixel moments.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from dlsys.core import (UserError, atomic_dir, load_params, device_from_params, save_torch, seed_everything, write_metrics,
                        write_table_csv)
from dlsys.core.outputs import PLOTS_ROOT
from dlsys.core.stage import run_stage
from dlsys.data.sevens import load_sevens
from dlsys.evaluation.latent_effects import axis_tilt, latent_effect, latent_plane_effect, spearman_rho
from dlsys.models.vae import VAE, reconstruction_bce, kl_divergence, traversal_codes, vae_terms
from dlsys.plots import image_grid, new_figure, save_figure, titled
from dlsys.training import TensorBatches, fit

log = logging.getLogger("dlsys.generative_vae")
RAW = Path("data/raw/sevens")
MODEL = Path("data/models/generative/vae.pt")
FAMILY, STEP = "generative", "vae"


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, batch_size: int) -> dict:
    """Mean BCE and KL per image on held-out data (one reparameterised sample each)."""
    bce = kl = 0.0
    for i in range(0, len(x), batch_size):
        logits, mu, logvar = model(x[i:i + batch_size])
        bce += float(reconstruction_bce(logits, x[i:i + batch_size]).sum())
        kl += float(kl_divergence(mu, logvar).sum())
    return {"test_bce": bce / len(x), "test_kl": kl / len(x)}


def main() -> None:
    p = load_params()
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    v = p.sub("vae")
    latent_dim = v.int("latent_dim", lo=1, hi=4)  # the issue: K < 5
    hidden = v.list("hidden", item_type=int, min_len=1, lo=1)
    epochs, batch_size = v.int("epochs", lo=1), v.int("batch_size", lo=1)
    lr = v.float("lr", lo=0, hi=1)
    t_min, t_max = v.float("traverse_min"), v.float("traverse_max")
    t_step = v.float("traverse_step", lo=1e-6)
    if t_max <= t_min:
        raise UserError(f"params.yaml: 'vae.traverse_max' ({t_max}) must exceed 'vae.traverse_min' ({t_min})")

    data = load_sevens(RAW)
    x_train = torch.from_numpy(data.train).flatten(1).to(device)
    x_test = torch.from_numpy(data.test).flatten(1).to(device)
    model = VAE(latent_dim, hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    running = {"bce": torch.zeros((), device=device), "kl": torch.zeros((), device=device), "n": 0}

    def loss_fn(m, batch):
        bce, kl = vae_terms(m, batch[0])
        n = len(batch[0])
        running["bce"] = running["bce"] + bce.detach() * n
        running["kl"] = running["kl"] + kl.detach() * n
        running["n"] += n
        return bce + kl

    def on_epoch(m, _epoch) -> dict:
        n = max(running["n"], 1)
        row = {"train_bce": float(running["bce"]) / n, "train_kl": float(running["kl"]) / n}
        running.update(bce=torch.zeros((), device=device), kl=torch.zeros((), device=device), n=0)
        return {**row, **evaluate(m, x_test, batch_size)}

    history = fit(model, optimizer, TensorBatches([x_train], batch_size, generator=gen), loss_fn, epochs,
                  evaluate=on_epoch, desc="vae")
    model.eval()
    save_torch({"config": {"latent_dim": latent_dim, "hidden": hidden},
                "state_dict": {k: t.cpu() for k, t in model.state_dict().items()}}, MODEL)

    # Which latent unit carries the rotation?
    with torch.no_grad():
        mu_test = model.encode(x_test)[0].cpu().numpy()
    estimated = axis_tilt(data.test)
    if data.angles_test is not None:
        angles, angle_source = data.angles_test, "sidecar (true rotation)"
    else:
        angles, angle_source = estimated, "principal-axis tilt from pixel moments"
    effect = latent_effect(mu_test, angles)
    plane = latent_plane_effect(mu_test, angles)
    extra = {}
    if data.angles_test is not None:  # how well would the real-data estimator have done here?
        extra["axis_tilt_rho_vs_true_angle"] = spearman_rho(estimated, data.angles_test)
        extra["rotation_dim_rho_vs_axis_tilt"] = (
            spearman_rho(mu_test[:, effect["best_dim"]], estimated) if effect["best_dim"] is not None else None)

    last = history.rows[-1]
    write_metrics(FAMILY, STEP, {
        "latent_dim": latent_dim, "epochs_run": history.epochs_run, "diverged": history.diverged,
        "diverged_at": history.diverged_at, "train_seconds": round(history.seconds, 2),
        "train_bce": last.get("train_bce"), "train_kl": last.get("train_kl"),
        "test_bce": last.get("test_bce"), "test_kl": last.get("test_kl"),
        "angle_source": angle_source, "rotation_dim": effect["best_dim"], "rotation_rho": effect["rho"],
        "rotation_abs_rho": effect["abs_rho"], "rho_per_dim": effect["rho_per_dim"],
        "rotation_plane_dims": plane["dims"], "rotation_plane_rho": plane["rho"], **extra,
    }, data.source)
    log.info("rotation: latent dim %s, Spearman rho %.3f; plane %s, rho %.3f (%s)", effect["best_dim"],
             effect["rho"], plane["dims"], plane["rho"], angle_source)

    with atomic_dir(PLOTS_ROOT / FAMILY / STEP) as out:
        write_table_csv(out / "losses.csv", [{k: r.get(k) for k in
                                              ("epoch", "train_bce", "train_kl", "test_bce", "test_kl")}
                                             for r in history.rows])
        fig, axes = new_figure(2)
        for ax, term in zip(axes[0], ("bce", "kl")):
            for split in ("train", "test"):
                ax.plot([r["epoch"] for r in history.rows], [r.get(f"{split}_{term}") for r in history.rows],
                        label=split)
            ax.set(xlabel="epoch", ylabel=f"{term.upper()} per image")
            ax.legend()
        fig.suptitle(titled("VAE loss terms", data.source))
        save_figure(fig, out / "losses.png")
        plot_traversals(model, latent_dim, torch.arange(t_min, t_max + t_step / 2, t_step), effect, gen,
                        out, data.source)
        plot_latent_vs_angle(mu_test, angles, effect, angle_source, out, data.source)


@torch.no_grad()
def plot_traversals(model, latent_dim, values, effect, gen, out: Path, source: str) -> None:
    """Per dimension k: the other K−1 coordinates drawn once from N(0, 1), k swept over `values`."""
    device = next(model.parameters()).device
    rows = []
    (out / "traversals").mkdir()
    for k in range(latent_dim):
        codes = traversal_codes(latent_dim, k, values, gen).to(device)
        imgs = list(torch.sigmoid(model.decode(codes)).reshape(-1, 28, 28).cpu().numpy())
        rows += imgs
        rho = effect["rho_per_dim"][k]
        title = titled(f"latent dim {k} from {values[0]:g} to {values[-1]:g} (Spearman rho with angle {rho:+.2f})",
                       source)
        save_figure(image_grid(imgs, 1, len(values), title), out / "traversals" / f"dim{k}.png")
    labels = [f"z{k} ({effect['rho_per_dim'][k]:+.2f})" for k in range(latent_dim)]
    save_figure(image_grid(rows, latent_dim, len(values),
                           titled(f"VAE latent traversals, {values[0]:g} to {values[-1]:g}", source),
                           row_labels=labels), out / "traversals.png")


def plot_latent_vs_angle(mu, angles, effect, angle_source, out: Path, source: str) -> None:
    k = effect["best_dim"]
    if k is None:
        return
    fig, axes = new_figure(1)
    ax = axes[0][0]
    ax.scatter(np.asarray(angles), mu[:, k], s=4, alpha=0.5)
    ax.set(xlabel=f"angle, degrees ({angle_source})", ylabel=f"latent mean z{k}")
    ax.set_title(titled(f"test sevens: z{k} vs rotation, Spearman rho {effect['rho']:+.3f}", source))
    save_figure(fig, out / "latent_vs_angle.png")


if __name__ == "__main__":
    run_stage(main, "generative_vae")
