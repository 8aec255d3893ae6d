"""The MNIST family: the fully-connected baseline, what its layers learn, two training studies, and SVD
compression of its weights (once, as trainable factors, and inside the training loop).

| stage                      | run here               | params                                        |
|----------------------------|------------------------|-----------------------------------------------|
| mnist_train_mlp            | `run_train_mlp`        | mnist.mlp, mnist.train                        |
| mnist_analyze_mlp          | `run_analyze_mlp`      | mnist.analyze                                 |
| mnist_init_study@{sgd,adam}| `run_init_study`       | mnist.init_study, mnist.run_state             |
| mnist_dropout_study        | `run_dropout_study`    | mnist.dropout_study, mnist.run_state          |
| mnist_compress_svd         | `run_compress_svd`     | mnist.svd.ranks, mnist.svd.compress           |
| mnist_svd_finetune         | `run_svd_finetune`     | mnist.svd.rank, .compress, .finetune          |
| mnist_svd_in_loop          | `run_svd_in_loop`      | mnist.svd.rank, .compress, .in_loop           |

Models: `dlsys.models.mlp`; low-rank layers: `dlsys.compression`. Every training run goes through the
shared `dlsys.training.fit`; a run whose loss becomes NaN/inf is recorded (metrics, plots), its model is
saved marked diverged (never used as good), and the stage ends normally with a warning. Stages that read
a diverged baseline record that they had nothing to work on, the same way. Timings (seconds, samples/s,
the SVD-in-the-loop epoch-time ratio) go to timings/mnist/, never into metrics.

Tests: tests/tasks/test_mnist.py (recipe, hostile params, every stage at lr 1e30, in process),
tests/stages/test_mnist_e2e.py (the family through DVC), tests/models/test_mlp.py, tests/compression/.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlsys.compression.calibrated import calibrated_layers, calibrated_model
from dlsys.compression.factorized import (FactorizedLinear, count_params, dense_model, factorized_model, layer_svds,
                                          projected_model, reconstructed_model, weight_shapes)
from dlsys.compression.svd import projection_error, truncated_svd
from dlsys.core.context import RAW_ROOT, StageContext
from dlsys.core.errors import UserError
from dlsys.core.outputs import load_torch, write_table_csv
from dlsys.core.params import Params
from dlsys.core.seed import seed_everything
from dlsys.evaluation.classification import accuracy
from dlsys.evaluation.embedding import (assigned_top_k, knn_accuracy, pca_2d, silhouette, top_k_per_column,
                                        tsne_2d)
from dlsys.features.augment import validation_split
from dlsys.models.mlp import MLP, MLPConfig, config_from_params, mlp_from_checkpoint
from dlsys.plots import image_grid, new_figure, save_figure, titled
from dlsys.plots.history import plot_history
from dlsys.training import EpochLog, TensorBatches, fit, train_epoch

log = logging.getLogger(__name__)

BASELINE = "mlp.pt"                       # data/models/mnist/mlp.pt: the model every later stage reads
SVD_FINETUNE_MODEL = "mlp_svd_finetune.pt"
SVD_IN_LOOP_MODEL = "mlp_svd_in_loop.pt"
OPTIMIZERS = ("sgd", "adam", "adamw")
FINETUNE_INITS = ("svd", "calibrated")  # svd: the course's plain truncated SVD
SCHEDULES = ("none", "cosine", "step")
INIT_OPTIMIZERS = ("sgd", "adam")
N_CLASSES = 10
# (name, activation, init): the lecture's five setups of the init study
INIT_SETUPS = [("sigmoid_normal", "sigmoid", "normal"), ("sigmoid_xavier", "sigmoid", "xavier"),
               ("relu_normal", "relu", "normal"), ("relu_xavier", "relu", "xavier"), ("relu_he", "relu", "he")]
DROPOUT_SETUPS = [("sigmoid_xavier", "sigmoid", "xavier"), ("relu_he", "relu", "he")]
FINAL_EPOCH = "final epoch (no selection)"


# ==================================================================== data, evaluation, training recipe

@dataclass
class MnistTensors:
    x_train: torch.Tensor  # float32 (N, 784) in [0, 1]
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str


def load_mnist_tensors(device: torch.device | str, raw_dir: str | Path = RAW_ROOT / "mnist") -> MnistTensors:
    from dlsys.data.mnist import load_mnist

    d = load_mnist(str(raw_dir))

    def pixels(a) -> torch.Tensor:
        return torch.as_tensor(a).reshape(len(a), -1).to(device=device, dtype=torch.float32) / 255.0

    def labels(a) -> torch.Tensor:
        return torch.as_tensor(a).to(device=device, dtype=torch.int64)

    return MnistTensors(pixels(d.x_train), labels(d.y_train), pixels(d.x_test), labels(d.y_test), d.source)


def load_data(ctx: StageContext) -> MnistTensors:
    ctx.use_data("mnist")
    return load_mnist_tensors(ctx.device)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2048) -> dict:
    """Accuracy and mean cross-entropy (no augmentation, no dropout); a non-finite loss is NaN."""
    logits = predict_logits(model, x, batch_size)
    loss = float(F.cross_entropy(logits, y))
    return {"acc": accuracy(logits, y), "loss": loss if math.isfinite(loss) else float("nan")}


def random_shift(x: torch.Tensor, max_px: int, generator: torch.Generator, side: int = 28) -> torch.Tensor:
    """Translate each image by its own random integer offset in [-max_px, max_px]² (zero fill), batched."""
    if max_px <= 0:
        return x
    n = len(x)
    img = F.pad(x.reshape(n, side, side), (max_px,) * 4)
    off = torch.randint(0, 2 * max_px + 1, (2, n), generator=generator).to(x.device)
    ar = torch.arange(side, device=x.device)
    rows = (off[0][:, None] + ar)[:, :, None]
    cols = (off[1][:, None] + ar)[:, None, :]
    return img[torch.arange(n, device=x.device)[:, None, None], rows, cols].reshape(x.shape)


def make_loss(label_smoothing: float = 0.0, shift_px: int = 0, generator: torch.Generator | None = None):
    gen = generator if generator is not None else torch.Generator().manual_seed(0)

    def loss_fn(model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        if model.training and shift_px > 0:
            x = random_shift(x, shift_px, gen)
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss_fn


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.0):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    # fused: one kernel for all parameters (~7× faster than the per-tensor loop for the 5M-weight MLP on CPU)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    raise UserError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_scheduler(name: str, optimizer, epochs: int, step_size: int = 10, gamma: float = 0.1):
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    raise UserError(f"schedule must be one of {SCHEDULES}, got {name!r}")


def learning_rate(p: Params, key: str = "lr") -> float:
    """A learning rate: finite and > 0 (0 would train nothing and still report a result)."""
    lr = p.float(key, lo=0.0)
    if lr <= 0:
        raise UserError(f"params.yaml: '{p._key(key)}' must be > 0 (a zero learning rate trains nothing), "
                        f"got {lr!r}")
    return lr


@dataclass
class TrainConfig:
    """One training recipe; `from_params` reads a params group such as mnist.train."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "none"
    epochs: int = 1
    batch_size: int = 128
    label_smoothing: float = 0.0
    shift_px: int = 0

    @classmethod
    def from_params(cls, p: Params, with_lr: bool = True) -> "TrainConfig":
        """`with_lr=False`: the group's lr is a grid that `select_and_refit` reads (SettingGrid)."""
        return cls(
            optimizer=p.choice("optimizer", OPTIMIZERS),
            lr=learning_rate(p) if with_lr else cls.lr,
            weight_decay=p.float("weight_decay", lo=0.0, default=0.0),
            schedule=p.choice("schedule", SCHEDULES, default="none"),
            epochs=p.int("epochs", lo=1),
            batch_size=p.int("batch_size", lo=1),
            label_smoothing=p.float("label_smoothing", lo=0.0, hi=1.0, default=0.0),
            shift_px=p.int("shift_px", lo=0, hi=8, default=0),
        )


def train_classifier(model: nn.Module, data: MnistTensors, cfg: TrainConfig, generator: torch.Generator,
                     desc: str = "train", train_eval_n: int = 0, loss_fn=None, after_step=None) -> EpochLog:
    """Train with the shared loop; each epoch's row gets test_acc/test_loss (and train_err on a subset)."""
    batches = TensorBatches([data.x_train, data.y_train], cfg.batch_size, shuffle=True, generator=generator)
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    sched = make_scheduler(cfg.schedule, opt, cfg.epochs)
    aug_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    loss_fn = loss_fn or make_loss(cfg.label_smoothing, cfg.shift_px, aug_gen)
    n_tr = min(train_eval_n, len(data.x_train))

    def epoch_eval(m: nn.Module, _epoch: int) -> dict:
        te = evaluate(m, data.x_test, data.y_test)
        row = {"test_acc": te["acc"], "test_err": 1.0 - te["acc"], "test_loss": te["loss"]}
        if n_tr:
            tr = evaluate(m, data.x_train[:n_tr], data.y_train[:n_tr])
            row.update(train_err=1.0 - tr["acc"], train_eval_loss=tr["loss"])
        return row

    return fit(model, opt, batches, loss_fn, cfg.epochs, evaluate=epoch_eval, scheduler=sched, desc=desc,
               after_step=after_step)


def warn_diverged(ctx: StageContext, hist: EpochLog, what: str, lr: float, saved: bool = True) -> None:
    if hist.diverged:
        log.warning("%s diverged at epoch %s (lr %g): recorded in %s%s", what, hist.diverged_at, lr,
                    ctx.metrics_path, "; its model is saved marked diverged" if saved else "")


def number_grid(p: Params, key: str, lo: float | None = None, hi: float | None = None) -> list[float]:
    """A number or a list of candidate numbers (`lr: 0.001` or `lr: [1.0e-4, 1.0e-3]`), range-checked."""
    if isinstance(p.raw(key), list):
        return [float(v) for v in p.list(key, min_len=1, lo=lo, hi=hi)]
    return [p.float(key, lo=lo, hi=hi)]


@dataclass(frozen=True)
class SettingGrid:
    """Candidate (lr, hidden dropout) settings of a fine-tune, chosen on validation images carved from the
    training set (params `lr`, `dropout_hidden`, `n_val` of the group). One setting: nothing to choose."""

    lrs: tuple[float, ...]
    dropouts: tuple[float, ...]
    n_val: int
    n_val_key: str = "n_val"  # for the error message

    @classmethod
    def from_params(cls, p: Params) -> "SettingGrid":
        lrs = number_grid(p, "lr", lo=0.0)
        if any(lr <= 0 for lr in lrs):
            raise UserError(f"params.yaml: '{p._key('lr')}' must be > 0 (a zero learning rate trains nothing), "
                            f"got {p.raw('lr')!r}")
        return cls(tuple(lrs), tuple(number_grid(p, "dropout_hidden", lo=0.0, hi=0.99)),
                   p.int("n_val", lo=1), p._key("n_val"))

    @property
    def settings(self) -> list[tuple[float, float]]:
        return [(lr, d) for lr in self.lrs for d in self.dropouts]


def carve_validation(data: MnistTensors, n_val: int, seed: int, key: str = "n_val") -> MnistTensors:
    """The training set split in two: `x_train` the rest, `x_test` the seeded validation images."""
    n = len(data.x_train)
    if n_val >= n:
        raise UserError(f"params.yaml: '{key}' = {n_val} validation images must be fewer than the {n} "
                        f"training images")
    tr, va = (torch.as_tensor(i, device=data.x_train.device) for i in validation_split(n, n_val, seed))
    return MnistTensors(data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va], data.source)


def with_hidden_dropout(model: MLP, p: float) -> MLP:
    """The same network with dropout p on every hidden layer's input (its config says so, for the checkpoint)."""
    for drop in list(model.drops)[1:]:
        drop.p = p
    model.cfg = replace(model.cfg, dropout_hidden=p)
    return model


@dataclass
class Selected:
    """What `select_and_refit` returns: the refit model and run, the chosen setting and every candidate's score."""
    model: nn.Module
    hist: EpochLog
    lr: float
    dropout_hidden: float
    candidates: list[dict]
    selection: str


def select_and_refit(ctx: StageContext, make_model, data: MnistTensors, tc: TrainConfig, grid: SettingGrid,
                     desc: str) -> Selected:
    """Train every setting on the training set minus `grid.n_val` validation images, choose the best
    final-epoch validation accuracy (first listed on a tie; a diverged run never wins), then train the
    chosen setting again from the same start on the whole training set and keep its final epoch. Every run
    uses the stage's seed, so settings differ only in the setting. The test images are never looked at."""
    settings = grid.settings
    candidates: list[dict] = []
    if len(settings) > 1:
        split = carve_validation(data, grid.n_val, ctx.seed, grid.n_val_key)
        for lr, drop in settings:
            model = with_hidden_dropout(make_model(), drop)
            torch.manual_seed(ctx.seed)  # dropout masks come from torch's global generator: same draws every run
            hist = train_classifier(model, split, replace(tc, lr=lr), torch.Generator().manual_seed(ctx.seed),
                                    desc=f"{desc} lr={lr:g} dropout={drop:g} (validation)")
            val = None if hist.diverged else hist.last["test_acc"]
            candidates.append({"lr": lr, "dropout_hidden": drop, "val_acc": val, "diverged": hist.diverged})
            log.info("%s: lr %g, dropout %g: validation accuracy %s", desc, lr, drop, val)
        finite = [c for c in candidates if c["val_acc"] is not None]
        best = max(finite, key=lambda c: c["val_acc"]) if finite else candidates[0]
        lr, drop = best["lr"], best["dropout_hidden"]
        selection = (f"lr and hidden dropout chosen from {len(settings)} settings by final-epoch accuracy on "
                     f"{grid.n_val} validation images carved from the training set; the chosen setting "
                     f"retrained on all {len(data.x_train)} training images, final epoch")
    else:
        (lr, drop), selection = settings[0], FINAL_EPOCH
    model = with_hidden_dropout(make_model(), drop)
    torch.manual_seed(ctx.seed)
    hist = train_classifier(model, data, replace(tc, lr=lr), torch.Generator().manual_seed(ctx.seed), desc=desc)
    return Selected(model, hist, lr, drop, candidates, selection)


def _note_png(path: Path, text: str, source: str) -> None:
    """A figure that says why there is nothing to draw (kept so every declared plot exists)."""
    fig, ax = new_figure()
    ax[0, 0].text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax[0, 0].transAxes)
    ax[0, 0].set_axis_off()
    fig.suptitle(titled("nothing to draw", source))
    save_figure(fig, path)


def load_baseline(ctx: StageContext) -> tuple[MLP, bool]:
    """The mnist_train_mlp baseline (eval mode) and whether its training diverged.

    A diverged baseline is returned so the stage can record that it had nothing to work on; its weights
    are never used.
    """
    path = ctx.model_path(BASELINE)
    ckpt = load_torch(path)
    model = mlp_from_checkpoint(ckpt, path).to(ctx.device).eval()
    diverged = bool(ckpt.get("diverged"))
    if diverged:
        log.warning("%s: the baseline diverged in mnist_train_mlp; %s records that and computes nothing "
                    "(lower mnist.train.lr and re-run)", path, ctx.stage)
    return model, diverged


# ==================================================================== mnist_train_mlp

def run_train_mlp(ctx: StageContext) -> None:
    """The 784→1024×5→10 baseline; per-epoch curves; saves data/models/mnist/mlp.pt."""
    p = ctx.params
    cfg = config_from_params(p.sub("mnist.mlp"))
    tc = TrainConfig.from_params(p.sub("mnist.train"))
    data = load_data(ctx)

    model = MLP(cfg, generator=ctx.generator).to(ctx.device)
    hist = train_classifier(model, data, tc, ctx.generator, desc="mnist mlp")
    final = evaluate(model, data.x_test, data.y_test) if not hist.diverged else {"acc": None, "loss": None}
    n_params = sum(t.numel() for t in model.parameters())
    ctx.save_checkpoint(ctx.model_path(BASELINE), model, asdict(cfg),
                        extra={"test_acc": final["acc"], **({"diverged": True} if hist.diverged else {})})
    ctx.write_metrics({
        "test_acc": final["acc"], "test_loss": final["loss"], "train_loss": hist.last["train_loss"],
        **hist.summary(), "n_params": n_params, "n_train": len(data.x_train), "n_test": len(data.x_test),
    }, selection=FINAL_EPOCH)
    n_seen = len(data.x_train) * hist.epochs_run
    ctx.time(train_seconds=round(hist.seconds, 2),
             samples_per_second=round(n_seen / max(hist.seconds, 1e-9), 1),
             epoch_seconds_mean=round(statistics.mean(hist.epoch_seconds), 3))
    warn_diverged(ctx, hist, "the baseline", tc.lr)

    rows = [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc")} for r in hist.rows]
    arch = f"{cfg.in_dim}-" + "-".join(map(str, cfg.hidden)) + f"-{cfg.n_classes}"
    result = (f"diverged at epoch {hist.diverged_at}" if hist.diverged
              else f"test acc {100 * final['acc']:.2f}%")
    with ctx.plots() as out:
        plot_history(rows, out, f"MLP {arch}: {result}", ctx.source, diverged_at=hist.diverged_at)
    log.info("test accuracy %s (%d params, %.1f s)", final["acc"], n_params, hist.seconds)


# ==================================================================== mnist_analyze_mlp

def _grid_cells(images: np.ndarray, rows: list[list[int]], k: int) -> list:
    cells = []
    for idx in rows:
        cells += [images[i] for i in idx] + [None] * (k - len(idx))
    return cells


def _scatter_panel(ax, emb: np.ndarray, labels: np.ndarray, title: str) -> None:
    ax.scatter(emb[:, 0], emb[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7, vmin=0, vmax=9)
    for c in np.unique(labels):
        m = emb[labels == c].mean(axis=0)
        ax.text(m[0], m[1], str(c), fontsize=12, weight="bold", ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", alpha=0.7, lw=0))
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def separability_table(reps: dict[str, np.ndarray], labels: np.ndarray, perplexity: float, pca_dims: int,
                       knn_k: int, seed: int) -> tuple[list[dict], dict]:
    """Per representation: k-NN accuracy in full dimension, and k-NN accuracy and silhouette in its
    PCA and t-SNE 2-D embeddings (returned too, for the scatter plots)."""
    table, embs = [], {"pca": {}, "tsne": {}}
    for depth, (name, feats) in enumerate(reps.items()):
        row = {"depth": depth, "representation": name, "knn_full": knn_accuracy(feats, labels, knn_k)}
        for method in ("pca", "tsne"):
            emb = pca_2d(feats, 2, seed) if method == "pca" else tsne_2d(feats, perplexity, pca_dims, seed)
            embs[method][name] = emb
            row[f"{method}_knn"] = knn_accuracy(emb, labels, knn_k)
            row[f"{method}_silhouette"] = silhouette(emb, labels)
        table.append(row)
        log.info("%s: %s", name, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
    return table, embs


def run_analyze_mlp(ctx: StageContext) -> None:
    """Top-k image grids per class and per penultimate unit; PCA/t-SNE of every layer with separability."""
    q = ctx.params.sub("mnist.analyze")
    n, n_units, k = q.int("n_samples", lo=10), q.int("n_units", lo=1), q.int("top_k", lo=1)
    pca_dims, perplexity, knn_k = q.int("pca_dims", lo=0), q.float("tsne_perplexity", lo=1.0), q.int("knn_k", lo=1)
    data = load_data(ctx)
    model, diverged = load_baseline(ctx)
    if diverged:
        ctx.write_metrics({"baseline_diverged": True, "n_samples": 0}, selection="the mnist_train_mlp baseline")
        with ctx.plots() as out:
            write_table_csv(out / "separability.csv", [])
            _note_png(out / "separability.png", "the baseline diverged: no representations to analyse", ctx.source)
        return

    x, y = data.x_test[:n], data.y_test[:n]
    with torch.no_grad():
        outs = [h.cpu().numpy() for h in model.hidden_outputs(x)]
    labels = y.cpu().numpy()
    images = x.reshape(len(x), 28, 28).cpu().numpy()
    probs = torch.softmax(torch.as_tensor(outs[-1]), dim=1).numpy()
    penult = outs[-2]
    units = np.sort(np.random.default_rng(ctx.seed).choice(penult.shape[1], size=n_units, replace=False))
    unit_rows = assigned_top_k(penult[:, units], k)
    class_rows = top_k_per_column(probs, k)

    reps = {"pixels": images.reshape(len(images), -1)}
    reps.update({f"h{i + 1}": h for i, h in enumerate(outs[:-1])})
    reps["logits"] = outs[-1]
    t0 = time.perf_counter()
    table, embs = separability_table(reps, labels, perplexity, pca_dims, knn_k, ctx.seed)
    ctx.time(embedding_seconds=round(time.perf_counter() - t0, 2))

    ctx.write_metrics({
        "n_samples": int(len(labels)), "units": units.tolist(),
        "unit_winners": [len(r) for r in unit_rows], "knn_k": knn_k,
        "separability": {r["representation"]: {k_: v for k_, v in r.items() if k_ not in ("representation", "depth")}
                         for r in table},
    }, selection="the mnist_train_mlp baseline (its final epoch)")
    src = ctx.source
    with ctx.plots() as out:
        write_table_csv(out / "separability.csv", table)
        save_figure(image_grid(_grid_cells(images, class_rows, k), len(class_rows), k,
                               titled("highest softmax probability per class", src),
                               row_labels=[str(c) for c in range(len(class_rows))]), out / "top_per_class.png")
        save_figure(image_grid(_grid_cells(images, unit_rows, k), n_units, k,
                               titled("top images per penultimate unit (assigned to their max unit)", src),
                               row_labels=[f"u{u}" for u in units]), out / "top_per_unit.png")
        names = [t["representation"] for t in table]
        depth = [t["depth"] for t in table]
        for method, label in (("pca", "PCA"), ("tsne", "t-SNE")):
            fig, ax = new_figure(4, 2, size=(16, 8))
            for a, (name, emb), r in zip(ax.flat, embs[method].items(), table):
                _scatter_panel(a, emb, labels, f"{name}: {knn_k}-NN acc {r[f'{method}_knn']:.3f}, "
                                               f"silhouette {r[f'{method}_silhouette']:.2f}")
            a = ax.flat[-1]
            a.plot(depth, [t[f"{method}_knn"] for t in table], "o-", label="2-D k-NN acc")
            a.plot(depth, [t["knn_full"] for t in table], "s--", label="full-dim k-NN acc")
            a.set_xticks(range(len(table)), names, fontsize=7)
            a.set(ylabel="accuracy")
            a.legend(fontsize=7)
            fig.suptitle(titled(f"{label} of each layer's output ({len(labels)} test images)", src))
            save_figure(fig, out / f"{method}.png")
        fig, ax = new_figure()
        for key, mk in (("pca_knn", "o-"), ("tsne_knn", "s-"), ("knn_full", "^--")):
            ax[0, 0].plot(depth, [t[key] for t in table], mk, label=key)
        ax[0, 0].set_xticks(range(len(table)), names)
        ax[0, 0].set(ylabel=f"leave-one-out {knn_k}-NN accuracy")
        ax[0, 0].legend()
        ax[0, 0].set_title(titled("separability per layer", src))
        save_figure(fig, out / "separability.png")


# ==================================================================== mnist_init_study

def windowed(losses: list[float], every: int) -> list[tuple[int, float]]:
    """Mean loss over consecutive windows of `every` iterations: (last iteration, mean).

    At the first non-finite loss the curve ends: the finite part of that window, then (iteration, NaN).
    """
    out = []
    for lo in range(0, len(losses), every):
        chunk = losses[lo:lo + every]
        bad = next((i for i, v in enumerate(chunk) if not math.isfinite(v)), None)
        if bad is None:
            out.append((lo + len(chunk), sum(chunk) / len(chunk)))
            continue
        if bad:
            out.append((lo + bad, sum(chunk[:bad]) / bad))
        out.append((lo + bad + 1, float("nan")))
        break
    return out


@dataclass
class RunStateRule:
    """How a training run is described: diverges, stalls, overfits or learns (mnist.run_state)."""

    stall_loss_fraction: float = 0.9   # stalls: final training loss >= this × ln(classes), a uniform guess
    overfit_loss_rise: float = 0.05    # overfits: final test loss this much (relative) above its minimum
    diverge_loss_multiple: float = 10.0  # diverges: loss non-finite, or final loss >= this × ln(classes)

    @classmethod
    def from_params(cls, p: Params) -> "RunStateRule":
        return cls(stall_loss_fraction=p.float("stall_loss_fraction", lo=0.0, hi=1.0),
                   overfit_loss_rise=p.float("overfit_loss_rise", lo=0.0),
                   diverge_loss_multiple=p.float("diverge_loss_multiple", lo=1.0))

    def state(self, diverged: bool, final_train_loss: float | None, test_losses: list[float | None],
              n_classes: int = N_CLASSES) -> str:
        """`final_train_loss`: the mean over the last iterations (not the whole last epoch)."""
        if diverged or final_train_loss is None or not math.isfinite(final_train_loss) \
                or final_train_loss >= self.diverge_loss_multiple * math.log(n_classes):
            return "diverges"  # a saturated net can keep a finite loss of 1e30: that has diverged too
        if final_train_loss >= self.stall_loss_fraction * math.log(n_classes):
            return "stalls"
        finite = [v for v in test_losses if v is not None and math.isfinite(v)]
        if len(finite) >= 2 and finite[-1] > (1.0 + self.overfit_loss_rise) * min(finite):
            return "overfits"
        return "learns"


def run_init_setup(activation: str, init: str, hidden: list[int], std: float, tc: TrainConfig,
                   data: MnistTensors, generator: torch.Generator, desc: str) -> tuple[EpochLog, list[float]]:
    """Train one setup; returns its epoch log and the training loss of every iteration."""
    model = MLP(MLPConfig(hidden=hidden, activation=activation, init=init, init_std=std), generator=generator)
    model = model.to(data.x_train.device)
    losses: list[torch.Tensor] = []

    def loss_fn(m, batch):
        x, y = batch
        loss = F.cross_entropy(m(x), y)
        losses.append(loss.detach())
        return loss

    hist = train_classifier(model, data, tc, generator, desc=desc, loss_fn=loss_fn)
    per_iter = torch.stack(losses).double().cpu().tolist() if losses else []
    return hist, per_iter


def run_init_study(ctx: StageContext) -> None:
    """5×512 FC net, five activation/init setups, one optimizer (ctx.variant: sgd | adam)."""
    opt = ctx.variant
    q = ctx.params.sub("mnist.init_study")
    hidden = q.list("hidden", item_type=int, min_len=1, lo=1)
    std = q.float("normal_std", lo=0.0)
    every = q.int("log_every", lo=1)
    ceiling = q.float("plot_loss_ceiling", lo=0.0)
    tc = TrainConfig(optimizer=opt, lr=learning_rate(q, f"{opt}.lr"), epochs=q.int("epochs", lo=1),
                     batch_size=q.int("batch_size", lo=1))
    rule = RunStateRule.from_params(ctx.params.sub("mnist.run_state"))
    data = load_data(ctx)

    results, curves = {}, {}
    for name, act, init in INIT_SETUPS:
        gen = seed_everything(ctx.seed)  # every setup starts from the same seeds (global ones too)
        hist, per_iter = run_init_setup(act, init, hidden, std, tc, data, gen, desc=f"{opt} {name}")
        curves[name] = windowed(per_iter, every)
        bad = next((i for i, v in enumerate(per_iter) if not math.isfinite(v)), None)
        last_window = curves[name][-1][1] if curves[name] else None
        finite_rows = [r for r in hist.rows if "test_acc" in r]
        results[name] = {
            "state": rule.state(hist.diverged, last_window, [r.get("test_loss") for r in hist.rows]),
            "diverged": hist.diverged, "diverged_at_iteration": None if bad is None else bad + 1,
            "iterations": len(per_iter),
            "final_train_loss": hist.last["train_loss"],
            "test_acc": finite_rows[-1]["test_acc"] if finite_rows else None,
        }
        log.info("%s/%s: %s", opt, name, results[name])
    ctx.write_metrics({"optimizer": opt, "lr": tc.lr, **results}, selection=FINAL_EPOCH)
    diverged = [n for n, r in results.items() if r["diverged"]]
    if diverged:
        log.warning("%s lr=%g: %s diverged (recorded in %s)", opt, tc.lr, ", ".join(diverged), ctx.metrics_path)

    panel = f"training loss (mean over {every} its)"
    with ctx.plots() as out:
        plot_history(curve_rows(curves), out, f"5x{hidden[0]} net, {opt} lr={tc.lr:g}: init and activation",
                     ctx.source, name="train_loss", x="iteration", panels={panel: list(curves)},
                     ceilings={panel: ceiling},
                     labels={n: f"{n}: {r['state']}" + (f" @ it {r['diverged_at_iteration']}" if r["diverged"] else "")
                             for n, r in results.items()})


def curve_rows(curves: dict[str, list[tuple[int, float]]]) -> list[dict]:
    """One row per iteration at which any curve has a point; a curve without a point there is None."""
    iterations = sorted({it for c in curves.values() for it, _ in c})
    points = {n: dict(c) for n, c in curves.items()}
    return [{"iteration": it, **{n: p.get(it) for n, p in points.items()}} for it in iterations]


# ==================================================================== mnist_dropout_study

def run_dropout_study(ctx: StageContext) -> None:
    """1024×5 FC net, Adam; {sigmoid+Xavier, ReLU+He} × {no dropout, dropout}: train/test error per epoch."""
    q = ctx.params.sub("mnist.dropout_study")
    hidden = q.list("hidden", item_type=int, min_len=1, lo=1)
    p_in, p_hid = q.float("p_input", lo=0.0, hi=0.99), q.float("p_hidden", lo=0.0, hi=0.99)
    n_eval = q.int("train_eval_n", lo=1)
    tc = TrainConfig(optimizer="adam", lr=learning_rate(q), epochs=q.int("epochs", lo=1),
                     batch_size=q.int("batch_size", lo=1))
    rule = RunStateRule.from_params(ctx.params.sub("mnist.run_state"))
    data = load_data(ctx)

    results, curves = {}, {}
    for name, act, init in DROPOUT_SETUPS:
        for dropout in (False, True):
            key = f"{name}_{'dropout' if dropout else 'plain'}"
            gen = seed_everything(ctx.seed)  # dropout draws from the global generator: reseed it too
            cfg = MLPConfig(hidden=hidden, activation=act, init=init,
                            dropout_input=p_in if dropout else 0.0, dropout_hidden=p_hid if dropout else 0.0)
            model = MLP(cfg, generator=gen).to(ctx.device)
            hist = train_classifier(model, data, tc, gen, desc=key, train_eval_n=n_eval)
            last = hist.last
            # training loss in eval mode (no dropout noise) on the train_eval_n samples
            final_loss = last.get("train_eval_loss", last["train_loss"])
            results[key] = {"state": rule.state(hist.diverged, final_loss, [r.get("test_loss") for r in hist.rows]),
                            "test_err": last.get("test_err"), "train_err": last.get("train_err"),
                            "test_err_selected": min((r["test_err"] for r in hist.rows if "test_err" in r),
                                                     default=None),
                            "diverged": hist.diverged, "diverged_at_epoch": hist.diverged_at}
            curves[key] = hist.rows
            warn_diverged(ctx, hist, key, tc.lr, saved=False)
            log.info("%s: %s", key, results[key])
    ctx.write_metrics({"train_err_samples": min(n_eval, len(data.x_train)), **results},
                      selection=f"{FINAL_EPOCH}; test_err_selected: the lowest test error over the epochs, "
                                "chosen on the test data (the course's curve reading)")

    epochs = sorted({r["epoch"] for rows in curves.values() for r in rows})
    table = []
    for e in epochs:
        row = {"epoch": e}
        for key, rows in curves.items():
            r = next((r for r in rows if r["epoch"] == e), {})
            row[f"{key}_train_err"] = r.get("train_err")
            row[f"{key}_test_err"] = r.get("test_err")
        table.append(row)
    with ctx.plots() as out:
        plot_history(table, out, f"dropout {p_in:g}/{p_hid:g}, 5x{hidden[0]} net, Adam", ctx.source,
                     name="errors", panels={"error (%)": [c for c in table[0] if c != "epoch"]},
                     labels={f"{k}_{part}_err": f"{k} {part}: {r['state']}" for k, r in results.items()
                             for part in ("train", "test")})


# ==================================================================== SVD: shared checks

def n_compressed(q: Params, shapes: list[tuple[int, int]]) -> int:
    """mnist.svd.compress.n_compressed: W1…W_n are compressed; the output layer stays dense."""
    n = q.int("compress.n_compressed", lo=1)
    if n >= len(shapes):
        raise UserError(f"params.yaml: 'mnist.svd.compress.n_compressed' must be < {len(shapes)} "
                        f"(the output layer stays dense), got {n}")
    return n


def largest_rank(shapes: list[tuple[int, int]], n_comp: int) -> int:
    """The largest rank that compresses every one of W1…W_n: the smallest min(m, n) among them."""
    return min(min(s) for s in shapes[:n_comp])


def check_rank(key: str, rank: int, shapes: list[tuple[int, int]], n_comp: int) -> int:
    """Refuse a rank above min(m, n) of a matrix it compresses (it would silently mean a smaller one)."""
    top = largest_rank(shapes, n_comp)
    if rank > top:
        dims = ", ".join(f"W{i + 1} {m}x{n}" for i, (m, n) in enumerate(shapes[:n_comp]))
        raise UserError(f"params.yaml: '{key}' is {rank}, above min(m, n) of the matrices it compresses "
                        f"({dims}); the largest valid rank is {top}")
    return rank


def sweep_ranks(q: Params, shapes: list[tuple[int, int]], n_comp: int) -> list[int | None]:
    """mnist.svd.ranks: positive integers (each at most the largest valid rank) and/or "full" (D = min(m, n))."""
    ranks = q.list("ranks", item_type=int, min_len=1, lo=1, allow=["full"])
    for r in ranks:
        if r != "full":
            check_rank("mnist.svd.ranks", r, shapes, n_comp)
    return [None if r == "full" else r for r in ranks]


# ==================================================================== mnist_compress_svd

def run_compress_svd(ctx: StageContext) -> None:
    """SVD once per W1…W5 of the baseline; test accuracy and exact parameter count per rank D."""
    q = ctx.params.sub("mnist.svd")
    data = load_data(ctx)
    model, diverged = load_baseline(ctx)
    shapes = weight_shapes(model)
    n_comp = n_compressed(q, shapes)
    ranks = sweep_ranks(q, shapes, n_comp)
    base_params = count_params(shapes)
    selection = "the mnist_train_mlp baseline (its final epoch); every rank is reported, none selected"
    if diverged:
        ctx.write_metrics({"baseline_diverged": True, "baseline_test_acc": None, "baseline_n_params": base_params,
                           "compressed_layers": n_comp, "sweep": []}, selection=selection)
        with ctx.plots() as out:
            write_table_csv(out / "accuracy_vs_rank.csv", [])
            _note_png(out / "accuracy_vs_rank.png", "the baseline diverged: nothing to compress", ctx.source)
        return

    base_acc = evaluate(model, data.x_test, data.y_test)["acc"]
    svds = layer_svds(model, n_comp)  # once per matrix
    rows = []
    for r in ranks:
        acc = evaluate(reconstructed_model(model, svds, r), data.x_test, data.y_test)["acc"]
        n = count_params(shapes, r, n_comp, diagonal=True)
        d = "full" if r is None else r
        rows.append({"rank": d, "D_per_layer": [min(s.full_rank, r or s.full_rank) for s in svds],
                     "test_acc": acc, "n_params": n, "param_ratio": n / base_params})
        log.info("D=%s: test acc %.4f, %d params (%.3f of baseline)", d, acc, n, n / base_params)
    calibrated, calibration = calibrated_sweep(ctx, model, data, ranks, shapes, n_comp, base_params)
    ctx.write_metrics({"baseline_test_acc": base_acc, "baseline_n_params": base_params,
                       "compressed_layers": n_comp, "sweep": rows, "sweep_calibrated": calibrated,
                       "calibration": calibration},
                      selection=selection + "; sweep_calibrated: factors fitted in closed form on "
                                            "mnist.svd.calibrated.n_samples training images (no test data)")
    with ctx.plots() as out:
        plot_rank_sweep(rows, base_acc, out, ctx.source, calibrated)


@dataclass(frozen=True)
class Calibration:
    """params `mnist.svd.calibrated` and the training images the fit reads, as the first layer sees them."""
    x: torch.Tensor
    ridge: float
    refit_uncompressed: bool
    ridge_uncompressed: float

    def record(self) -> dict:
        """What the metrics say about the fit."""
        return {"n_samples": len(self.x), "ridge": self.ridge, "refit_uncompressed": self.refit_uncompressed,
                "ridge_uncompressed": self.ridge_uncompressed if self.refit_uncompressed else None}

    def fit(self, model: MLP, n_comp: int, rank: int | None):
        """n_comp rank-D layers, then (refit_uncompressed) the layers after them at full rank."""
        layers = list(model.layers) if self.refit_uncompressed else list(model.layers[:n_comp])
        return calibrated_layers(layers, self.x, model.act, rank, self.ridge, full_rank_tail=len(layers) - n_comp,
                                 tail_ridge=self.ridge_uncompressed)


def calibration_inputs(ctx: StageContext, model: MLP, data: MnistTensors) -> Calibration:
    """mnist.svd.calibrated, with the training images it names (the generator's first draw, so every stage
    that asks gets the same ones)."""
    c = ctx.params.sub("mnist.svd.calibrated")
    n = min(c.int("n_samples", lo=1), len(data.x_train))
    idx = torch.randperm(len(data.x_train), generator=ctx.generator)[:n].to(data.x_train.device)
    return Calibration((data.x_train[idx] - model.mean) / model.std, c.float("ridge", gt=0),
                       c.bool("refit_uncompressed"), c.float("ridge_uncompressed", gt=0))


def calibrated_sweep(ctx: StageContext, model: MLP, data: MnistTensors, ranks: list[int | None],
                     shapes: list[tuple[int, int]], n_comp: int, base_params: int) -> tuple[list[dict], dict]:
    """The same ranks, with each layer's rank-D factors fitted to the dense network's activations on
    training images (reduced-rank regression; no gradient steps, see dlsys.compression.calibrated); the
    rows and what the fit was."""
    calibration = calibration_inputs(ctx, model, data)
    rows = []
    for r in ranks:
        low = calibration.fit(model, n_comp, r)
        acc = evaluate(calibrated_model(model, low), data.x_test, data.y_test)["acc"]
        n_par = count_params(shapes, r, n_comp, diagonal=False)
        d = "full" if r is None else r
        rows.append({"rank": d, "D_per_layer": [lo.A.shape[1] for lo in low[:n_comp]], "test_acc": acc,
                     "n_params": n_par, "param_ratio": n_par / base_params})
        log.info("D=%s calibrated: test acc %.4f, %d params", d, acc, n_par)
    return rows, calibration.record()


def plot_rank_sweep(rows: list[dict], base_acc: float, out: Path, source: str,
                    calibrated: list[dict] | None = None) -> None:
    xs = [max(r["D_per_layer"]) for r in rows]
    cal = {max(r["D_per_layer"]): r["test_acc"] for r in calibrated or []}
    write_table_csv(out / "accuracy_vs_rank.csv",
                    [{"D": x, "test_acc": r["test_acc"], "calibrated_test_acc": cal.get(x),
                      "baseline_test_acc": base_acc, "n_params": r["n_params"], "param_ratio": r["param_ratio"]}
                     for x, r in zip(xs, rows)])
    fig, ax = new_figure()
    a = ax[0, 0]
    a.plot(xs, [100 * r["test_acc"] for r in rows], "o-", label="rank-D SVD of W1…W5 (course)")
    if cal:
        a.plot(list(cal), [100 * v for v in cal.values()], "s--", label="rank-D, fitted to activations")
    a.axhline(100 * base_acc, color="k", ls="--", label=f"baseline {100 * base_acc:.2f}%")
    for x, r in zip(xs, rows):
        a.annotate(f"{r['param_ratio']:.2f}x", (x, 100 * r["test_acc"]), textcoords="offset points",
                   xytext=(0, -12), ha="center", fontsize=7)
    a.set(xscale="log", xlabel="D (rank kept per layer; labels: params vs baseline)", ylabel="test accuracy (%)")
    a.legend()
    a.set_title(titled("SVD compression sweep", source))
    save_figure(fig, out / "accuracy_vs_rank.png")


# ==================================================================== mnist_svd_finetune

def run_svd_finetune(ctx: StageContext) -> None:
    """W1…W5 as two trainable factors W = U Vᵀ (rank D), initialised from the plain SVD (the course's) or
    from the factors fitted to the activations (mnist.svd.finetune.init), checked against the matching
    rank-D network of mnist_compress_svd's sweep, then fine-tuned. Its lr and hidden dropout are chosen on
    validation images carved from the training set (`select_and_refit`); the test set only scores the result."""
    q = ctx.params.sub("mnist.svd")
    tc = TrainConfig.from_params(q.sub("finetune"), with_lr=False)
    grid = SettingGrid.from_params(q.sub("finetune"))
    data = load_data(ctx)
    base, base_diverged = load_baseline(ctx)
    shapes = weight_shapes(base)
    n_comp = n_compressed(q, shapes)
    rank = check_rank("mnist.svd.rank", q.int("rank", lo=1), shapes, n_comp)
    n_params, base_params = count_params(shapes, rank, n_comp, diagonal=False), count_params(shapes)
    size = {"rank": rank, "n_params": n_params, "baseline_n_params": base_params,
            "param_ratio": n_params / base_params}
    out_model = ctx.model_path(SVD_FINETUNE_MODEL)
    if base_diverged:
        ctx.save_checkpoint(out_model, base, {"mlp": asdict(base.cfg)}, extra={"diverged": True})
        ctx.write_metrics({**size, "baseline_diverged": True, "test_acc": None, "diverged": True},
                          selection=FINAL_EPOCH)
        with ctx.plots() as out:
            plot_history([{"epoch": 0}], out, "the baseline diverged: nothing to fine-tune", ctx.source)
        return

    init = q.choice("finetune.init", FINETUNE_INITS)
    calibration = None
    if init == "svd":  # the course's: the plain truncated SVD
        svds = layer_svds(base, n_comp)
        start = reconstructed_model(base, svds, rank)

        def make_model() -> nn.Module:
            return factorized_model(base, svds, rank)
    else:  # the factors fitted to the activations (mnist_compress_svd's sweep_calibrated at this rank)
        calibration = calibration_inputs(ctx, base, data)
        low = calibration.fit(base, n_comp, rank)
        start = calibrated_model(base, low)

        def make_model() -> nn.Module:
            model = calibrated_model(base, low)  # keeps the refitted uncompressed layers, if any
            for i, lo in enumerate(low[:n_comp]):  # the compressed ones become trainable factors
                model.layers[i] = FactorizedLinear(lo.A, lo.B, lo.bias)
            return model
    model = make_model()
    sweep_logits = predict_logits(start, data.x_test)
    fact_logits = predict_logits(model, data.x_test)
    sweep_correct = int((sweep_logits.argmax(1) == data.y_test).sum())
    fact_correct = int((fact_logits.argmax(1) == data.y_test).sum())
    logit_diff = float((sweep_logits - fact_logits).abs().max())
    logit_scale = float(sweep_logits.abs().max().clamp_min(1e-12))
    if fact_correct != sweep_correct:  # the factors are the sweep's rank-D network: same predictions
        raise RuntimeError(f"factorized network disagrees with the rank-{rank} sweep network: {fact_correct} vs "
                           f"{sweep_correct} correct (max logit difference {logit_diff:.3g})")
    before = evaluate(model, data.x_test, data.y_test)

    chosen = select_and_refit(ctx, make_model, data, tc, grid, desc=f"svd finetune D={rank}")
    model, hist = chosen.model, chosen.hist
    after = evaluate(model, data.x_test, data.y_test) if not hist.diverged else {"acc": None, "loss": None}
    ctx.save_checkpoint(out_model, model, {"mlp": asdict(model.cfg), "rank": rank, "n_compressed": n_comp},
                        extra={"diverged": True} if hist.diverged else None)
    ctx.write_metrics({
        "rank": rank, "init": init, "lr": chosen.lr, "dropout_hidden": chosen.dropout_hidden,
        "test_acc_before": before["acc"], "sweep_test_acc_at_rank": sweep_correct / len(data.y_test),
        "max_abs_logit_diff_vs_sweep": logit_diff, "max_rel_logit_diff_vs_sweep": logit_diff / logit_scale,
        **({"calibration": calibration.record()} if calibration is not None else {}),
        "test_acc": after["acc"], "test_loss": after["loss"],
        **{k: v for k, v in size.items() if k != "rank"}, **hist.summary(),
        **({"n_val": grid.n_val, "candidates": chosen.candidates} if chosen.candidates else {}),
    }, selection=chosen.selection)
    ctx.time(train_seconds=round(hist.seconds, 2))
    warn_diverged(ctx, hist, f"the rank-{rank} fine-tune", chosen.lr)
    rows = [{"epoch": 0, "test_acc": before["acc"], "test_loss": before["loss"]}]
    rows += [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc")} for r in hist.rows]
    with ctx.plots() as out:
        plot_history(rows, out, f"factorized fine-tune, D={rank}, {n_params:,} params, lr {chosen.lr:g}, "
                     f"dropout {chosen.dropout_hidden:g}", ctx.source, diverged_at=hist.diverged_at,
                     xlabel=f"epoch (0 = the {init} initialisation)")
    log.info("D=%d: %.4f before, %s after fine-tuning (%d params; lr %g, dropout %g)", rank, before["acc"],
             after["acc"], n_params, chosen.lr, chosen.dropout_hidden)


# ==================================================================== mnist_svd_in_loop

def time_dense_epochs(model: nn.Module, data: MnistTensors, tc: TrainConfig, epochs: int, seed: int) -> list[float]:
    """Seconds per plain training epoch of a throw-away copy (same batches, optimizer, loss)."""
    m = copy.deepcopy(model).train()
    gen = torch.Generator().manual_seed(seed)
    batches = TensorBatches([data.x_train, data.y_train], tc.batch_size, shuffle=True, generator=gen)
    opt = make_optimizer(tc.optimizer, m.parameters(), tc.lr, tc.weight_decay)
    loss_fn = make_loss(tc.label_smoothing, tc.shift_px, torch.Generator().manual_seed(seed))
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        train_epoch(m, opt, batches, loss_fn)
        out.append(time.perf_counter() - t0)
    return out


def run_svd_in_loop(ctx: StageContext) -> None:
    """Fine-tune the baseline with the rank-D projection of W1…W5 in every forward pass (warm-started
    subspace iteration per matrix per step), straight-through in the backward pass, W itself replaced by
    that projection every step when `keep_projected` (the course lets W keep its full rank); lr and hidden dropout
    chosen on validation images carved from the training set (`select_and_refit`). The epoch-time ratio
    against a dense epoch of the same model, optimizer and batches goes to timings/."""
    q = ctx.params.sub("mnist.svd")
    ql = q.sub("in_loop")
    tc = TrainConfig.from_params(ql, with_lr=False)
    grid = SettingGrid.from_params(ql)
    oversample, power_iters = ql.int("oversample", lo=0), ql.int("power_iters", lo=1)
    keep_projected = ql.bool("keep_projected")
    timing_epochs = ql.int("timing_epochs", lo=1)
    data = load_data(ctx)
    base, base_diverged = load_baseline(ctx)
    shapes = weight_shapes(base)
    n_comp = n_compressed(q, shapes)
    rank = check_rank("mnist.svd.rank", q.int("rank", lo=1), shapes, n_comp)
    settings = {"rank": rank, "batch_size": tc.batch_size, "power_iters": power_iters, "oversample": oversample,
                "keep_projected": keep_projected}
    out_model = ctx.model_path(SVD_IN_LOOP_MODEL)
    if base_diverged:
        ctx.save_checkpoint(out_model, base, asdict(base.cfg), extra={"rank": rank, "diverged": True})
        ctx.write_metrics({**settings, "baseline_diverged": True, "test_acc": None, "diverged": True},
                          selection=FINAL_EPOCH)
        with ctx.plots() as out:
            plot_history([{"epoch": 0}], out, "the baseline diverged: nothing to fine-tune", ctx.source)
        return

    before = evaluate(reconstructed_model(base, layer_svds(base, n_comp), rank), data.x_test, data.y_test)
    dense_times = time_dense_epochs(base, data, replace(tc, lr=grid.lrs[0]), timing_epochs, ctx.seed)

    def make_model() -> nn.Module:
        return projected_model(base, n_comp, rank, oversample=oversample, power_iters=power_iters,
                               keep_projected=keep_projected)

    chosen = select_and_refit(ctx, make_model, data, tc, grid, desc=f"svd in loop D={rank}")
    model, hist = chosen.model, chosen.hist
    loop_epoch, dense_epoch = statistics.median(hist.epoch_seconds), statistics.median(dense_times)
    ratio = loop_epoch / dense_epoch
    ctx.time(epoch_seconds_svd_in_loop=round(loop_epoch, 3), epoch_seconds_baseline=round(dense_epoch, 3),
             epoch_time_ratio=round(ratio, 3), epoch_time_ratio_goal=1.3)

    final_w = with_hidden_dropout(dense_model(model, base), chosen.dropout_hidden)
    ctx.save_checkpoint(out_model, final_w, asdict(final_w.cfg),
                        extra={"rank": rank, **({"diverged": True} if hist.diverged else {})})
    metrics = {**settings, "lr": chosen.lr, "dropout_hidden": chosen.dropout_hidden,
               "test_acc_before": before["acc"], **hist.summary()}
    if hist.diverged:
        metrics.update(test_acc=None, test_acc_tracked_projection=None, test_acc_full_weights=None)
    else:
        tracked = evaluate(model, data.x_test, data.y_test)  # the forward used in training
        svds = layer_svds(final_w, n_comp)
        compressed = evaluate(reconstructed_model(final_w, svds, rank), data.x_test, data.y_test)
        err_ratio = [projection_error(layer.weight.detach(), layer.projected_weight())
                     / projection_error(layer.weight.detach(), truncated_svd(layer.weight.detach(), rank).reconstruct())
                     for layer in model.layers[:n_comp]]
        metrics.update(test_acc=compressed["acc"], test_acc_tracked_projection=tracked["acc"],
                       test_acc_full_weights=evaluate(final_w, data.x_test, data.y_test)["acc"],
                       final_error_ratio_vs_exact_svd=[round(e, 5) for e in err_ratio])
    if chosen.candidates:
        metrics.update(n_val=grid.n_val, candidates=chosen.candidates)
    ctx.write_metrics(metrics, selection=chosen.selection)
    warn_diverged(ctx, hist, f"the rank-{rank} SVD-in-the-loop run", chosen.lr)

    rows = [{"epoch": 0, "test_acc": before["acc"]}]
    rows += [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc")} for r in hist.rows]
    result = (f"diverged at epoch {hist.diverged_at}" if hist.diverged
              else f"{100 * metrics['test_acc']:.2f}% after the final rank-D SVD")
    with ctx.plots() as out:
        plot_history(rows, out, f"SVD in the loop, D={rank}: {result}", ctx.source, diverged_at=hist.diverged_at,
                     xlabel="epoch (0 = rank-D SVD of the baseline)")
    log.info("D=%d: %.4f -> %s; epoch time ratio %.2f (timings/)", rank, before["acc"], metrics["test_acc"], ratio)
