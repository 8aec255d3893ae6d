"""CIFAR-10 with the course's tiny CNN: the augmentation study and rotation-pretext self-supervision.

Stages (params group `cifar`, tests in tests/tasks/test_cifar.py and tests/stages/test_cifar_e2e.py):
- `cifar_augment` → `run_augment`: the seeded validation hold-out carved from the training images
  (data/features/cifar/split.pt) and a check figure of the four augmented versions (features/augment.py).
- `cifar_train@{baseline,augmented}` → `run_train`: the tiny CNN (models/cifar_cnn.py) on the originals or
  the 4× augmented set; the best epoch on the validation hold-out is tested once on the test set. With
  `train.test_views` beyond [original] each image's views are averaged (test-time augmentation) for both the
  choice and the test, and the course's single-view protocol is kept beside it (`plain_*`).
- `cifar_augment_report` → `run_augment_report`: both training runs on one figure, and the gains.
- `cifar_pretext` → `run_pretext`: the CNN with a 3-way head learns upright / upside-down / 90° rotation
  on the training images that are not among the last `ssl.n_labelled` (their labels unused).
- `cifar_ssl_baseline` / `cifar_ssl_transfer` → `run_ssl_baseline` / `run_ssl_transfer`: the CNN on only the last `ssl.n_labelled` training images,
  full batch, from scratch or from the pretext weights (new head; the transferred layers at their own lr, `lr_transferred`).

Model selection: `cifar_train` keeps the best epoch on validation images carved from the training set, and
its `test_acc` is that model's, measured once. The pretext and SSL models are the final epoch's. The SSL
stages draw a test-accuracy curve every `ssl.eval_every` epochs, as the course does; its best point is
chosen on the test set, so it is reported only as `test_selected_*` (optimistic), never as the result.
"""

from __future__ import annotations

import copy
import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dlsys.core.context import StageContext, load_checkpoint
from dlsys.core.errors import MissingDataError, UserError
from dlsys.core.outputs import PLOTS_ROOT, load_torch, save_torch
from dlsys.core.params import Params
from dlsys.data.cifar10 import load_cifar10
from dlsys.data.registry import raw_dir
from dlsys.evaluation.classification import accuracy
from dlsys.features.augment import (AUGMENT_NAMES, PRETEXT_NAMES, View, augment_set, labelled_split, pick_views,
                                    rotation_pretext, to_signed, to_unit, validation_split)
from dlsys.models.cifar_cnn import CifarCNN, check_transfer_layers, transfer_features, transfer_param_groups
from dlsys.plots import image_grid, save_figure, titled
from dlsys.plots.history import join_on_epoch, plot_history
from dlsys.training import TensorBatches, fit

log = logging.getLogger("dlsys.cifar")

DATASET = "cifar10"
SPLIT = "split.pt"                 # data/features/cifar/<this>
PRETEXT_MODEL = "pretext.pt"       # data/models/cifar/<this>
CURVES = "curves"                  # plots/cifar/<step>/curves.{csv,png}
TRAIN_VARIANTS = ("baseline", "augmented")
SSL_VARIANTS = ("baseline", "transfer")
N_CLASSES = 10
SELECTION_TRAIN = "best val_acc on the validation images carved from the training set (cifar.n_val)"
SELECTION_TRAIN_TTA = ("best val_acc_tta (class probabilities averaged over cifar.train.test_views of each image) on the "
                      "validation images carved from the training set (cifar.n_val); test_acc with the same views; "
                      "plain_*: the course's single view, its own best validation epoch")
SELECTION_FINAL = "final epoch"
SELECTION_SSL = ("final epoch; test_selected_* = the best point of the per-epoch test curve, chosen on the "
                 "test set as the course does (optimistic, not a held-out estimate)")


# ============================================================================ recipes

def model_config(p: Params, n_classes: int) -> dict:
    """The `cifar.model` group as CifarCNN's arguments (also stored in each checkpoint)."""
    m = p.sub("cifar").sub("model")
    channels = m.list("channels", item_type=int, min_len=2, lo=1)
    if len(channels) != 2:
        raise m._bad("channels", "a list of two conv widths", channels)
    return {"n_classes": n_classes, "channels": list(channels), "kernel": m.int("kernel", lo=1, hi=13),
            "hidden": m.int("hidden", lo=1)}


def build_model(config: dict) -> CifarCNN:
    return CifarCNN(**{**config, "channels": tuple(config["channels"])})


@dataclass(frozen=True)
class AugmentRecipe:
    """params `cifar.n_val` and `cifar.augment`."""
    n_val: int
    bright: float
    dark: float
    n_preview: int

    @classmethod
    def from_params(cls, p: Params) -> "AugmentRecipe":
        c = p.sub("cifar")
        a = c.sub("augment")
        return cls(n_val=c.int("n_val", lo=1), bright=a.float("bright", lo=1.0), dark=a.float("dark", lo=0.0, hi=1.0),
                   n_preview=a.int("n_preview", lo=1, hi=20))


@dataclass(frozen=True)
class TrainRecipe:
    """params `cifar.train`, `cifar.augment.{bright,dark}`, `cifar.eval_batch`."""
    epochs: int
    batch_size: int
    lr: float
    lr_drop_epoch: int
    lr_drop_factor: float
    bright: float
    dark: float
    eval_batch: int
    test_views: tuple[str, ...] = ("original",)

    @classmethod
    def from_params(cls, p: Params) -> "TrainRecipe":
        c = p.sub("cifar")
        t, a = c.sub("train"), c.sub("augment")
        r = cls(epochs=t.int("epochs", lo=1), batch_size=t.int("batch_size", lo=1), lr=t.float("lr", gt=0),
                lr_drop_epoch=t.int("lr_drop_epoch", lo=0), lr_drop_factor=t.float("lr_drop_factor", gt=0, hi=1),
                bright=a.float("bright", lo=1.0), dark=a.float("dark", lo=0.0, hi=1.0),
                eval_batch=c.int("eval_batch", lo=1), test_views=tuple(t.list("test_views", item_type=str, min_len=1)))
        try:
            r.views()
        except ValueError as exc:
            raise UserError(f"params.yaml: '{t._key('test_views')}': {exc}") from None
        return r

    @property
    def plain(self) -> bool:
        """One view, the image itself: the course's evaluation."""
        return self.test_views == ("original",)

    def views(self) -> list[View]:
        return pick_views(self.test_views, self.bright, self.dark)

    def scheduler(self, opt: torch.optim.Optimizer):
        """lr × lr_drop_factor every lr_drop_epoch epochs; None at 0 (the course: one constant lr)."""
        if self.lr_drop_epoch == 0:
            return None
        return torch.optim.lr_scheduler.StepLR(opt, step_size=self.lr_drop_epoch, gamma=self.lr_drop_factor)


@dataclass(frozen=True)
class PretextRecipe:
    """params `cifar.pretext`, `cifar.ssl.n_labelled` (those images are kept out), `cifar.eval_batch`."""
    epochs: int
    batch_size: int
    lr: float
    n_labelled: int
    eval_batch: int

    @classmethod
    def from_params(cls, p: Params) -> "PretextRecipe":
        c = p.sub("cifar")
        t = c.sub("pretext")
        return cls(epochs=t.int("epochs", lo=1), batch_size=t.int("batch_size", lo=1), lr=t.float("lr", gt=0),
                   n_labelled=c.int("ssl.n_labelled", lo=1), eval_batch=c.int("eval_batch", lo=1))


@dataclass(frozen=True)
class SslRecipe:
    """params `cifar.ssl`, `cifar.eval_batch`; `lr_transferred` and `transfer_layers` only for the transfer
    variant."""
    n_labelled: int
    epochs: int
    eval_every: int
    lr: float
    lr_transferred: float | None
    eval_batch: int
    transfer_layers: tuple[str, ...] | None = None

    @classmethod
    def from_params(cls, p: Params, transfer: bool) -> "SslRecipe":
        c = p.sub("cifar")
        s = c.sub("ssl")
        return cls(n_labelled=s.int("n_labelled", lo=1), epochs=s.int("epochs", lo=1),
                   eval_every=s.int("eval_every", lo=1), lr=s.float("lr", gt=0),
                   lr_transferred=s.float("lr_transferred", gt=0) if transfer else None,
                   eval_batch=c.int("eval_batch", lo=1),
                   transfer_layers=_transfer_layers(s) if transfer else None)


def _transfer_layers(s: Params) -> tuple[str, ...]:
    try:
        return check_transfer_layers(s.list("transfer_layers", item_type=str, min_len=1))
    except ValueError as exc:
        raise UserError(f"params.yaml: '{s._key('transfer_layers')}': {exc}") from None


# ============================================================================ data, loss, evaluation

@dataclass
class CifarTensors:
    x_train: torch.Tensor  # float [0, 1] NCHW on the device
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]


def load_unit(ctx: StageContext, device: torch.device | None = None) -> CifarTensors:
    """CIFAR-10 as [0, 1] NCHW float tensors and int64 labels on `device` (the stage's by default)."""
    ctx.use_data(DATASET)
    device = device or ctx.device
    d = load_cifar10(raw_dir(DATASET))
    return CifarTensors(to_unit(d.x_train, device), torch.as_tensor(d.y_train, device=device),
                        to_unit(d.x_test, device), torch.as_tensor(d.y_test, device=device), d.class_names)


def cross_entropy(model: torch.nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def safe_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """Top-1 accuracy over (x, y) in large batches; NaN when the logits are not finite (a diverged model's
    argmax is meaningless, and NaN is never chosen as the best epoch). Eval mode is the caller's (fit sets it)."""
    logits = torch.cat([model(x[lo:lo + batch]) for lo in range(0, len(x), batch)])
    return accuracy(logits, y) if bool(torch.isfinite(logits).all()) else math.nan


@torch.no_grad()
def view_averaged_accuracy(model: torch.nn.Module, x_unit: torch.Tensor, y: torch.Tensor, batch: int,
                           views: list[View]) -> float:
    """Top-1 accuracy of the class probabilities averaged over `views` of each [0, 1] image (test-time
    augmentation); NaN when any output is not finite, as `safe_accuracy`."""
    probs = []
    for lo in range(0, len(x_unit), batch):
        xb = x_unit[lo:lo + batch]
        probs.append(sum(torch.softmax(model(to_signed(view(xb))), dim=1) for view in views))
    p = torch.cat(probs)
    return accuracy(p, y) if bool(torch.isfinite(p).all()) else math.nan


class BestState:
    """The model state at the best value of one metric seen so far (for a second metric beside fit's `select`)."""

    def __init__(self) -> None:
        self.value, self.epoch, self.state = -math.inf, None, None

    def offer(self, model: torch.nn.Module, epoch: int, value: float) -> None:
        if math.isfinite(value) and value > self.value:
            self.value, self.epoch = value, epoch
            self.state = copy.deepcopy(model.state_dict())


def finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def divergence(hist) -> dict:
    """`diverged` always; the epoch only when it happened (keeps a normal run's metrics as they were)."""
    return {"diverged": hist.diverged, **({"diverged_at_epoch": hist.diverged_at} if hist.diverged else {})}


def warn_diverged(ctx: StageContext, hist) -> None:
    if hist.diverged:
        log.warning("%s diverged at epoch %d: recorded in the metrics and curves; lower the learning rate",
                    ctx.stage, hist.diverged_at)


def read_curve(path: Path) -> list[dict]:
    """Rows of a curves.csv written by another stage, values as floats (None where empty)."""
    if not path.exists():
        raise MissingDataError(f"{path}: not found; run its stage first (dvc repro)")
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()} for r in csv.DictReader(f)]


# ============================================================================ augmentation study

def run_augment(ctx: StageContext) -> None:
    r = AugmentRecipe.from_params(ctx.params)
    d = load_unit(ctx, torch.device("cpu"))
    x, y = d.x_train, d.y_train
    train_idx, val_idx = validation_split(len(x), r.n_val, ctx.seed)
    save_torch({"train": torch.from_numpy(train_idx), "val": torch.from_numpy(val_idx)}, ctx.features_path(SPLIT))

    xa, ya = augment_set(x[train_idx], y[train_idx], r.bright, r.dark)
    signed = to_signed(xa)
    n = len(train_idx)
    pick = torch.arange(min(r.n_preview, n))
    cells = [xa[k * n + i].permute(1, 2, 0).numpy() for i in pick for k in range(len(AUGMENT_NAMES))]
    fig = image_grid(cells, len(pick), len(AUGMENT_NAMES),
                     titled("augmentations: " + " | ".join(AUGMENT_NAMES), ctx.source),
                     row_labels=[d.class_names[int(y[train_idx[i]])] for i in pick], cell=1.1)
    with ctx.plots() as out:
        save_figure(fig, out / "augment_examples.png")
    ctx.write_metrics({
        "n_train": n, "n_val": len(val_idx), "n_augmented": len(xa),
        "signed_min": float(signed.min()), "signed_max": float(signed.max()),
        "labels_repeated": bool(torch.equal(ya, y[train_idx].repeat(len(AUGMENT_NAMES)))),
    })
    log.info("split: %d train / %d validation; augmented set %d images", n, len(val_idx), len(xa))


def load_split(ctx: StageContext, n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training/validation indices cifar_augment carved from the training images."""
    path = ctx.features_path(SPLIT)
    if not path.exists():
        raise MissingDataError(f"{path}: not found; run `dvc repro cifar_augment` first")
    split = load_torch(path)
    tr, va = split["train"], split["val"]
    if len(tr) + len(va) != n_train or int(torch.cat([tr, va]).max()) >= n_train:
        raise UserError(f"{path}: made for another training set ({len(tr) + len(va)} images, now {n_train}); "
                        "re-run `dvc repro cifar_augment`")
    return tr.to(ctx.device), va.to(ctx.device)


def run_train(ctx: StageContext) -> None:
    variant = ctx.variant
    r = TrainRecipe.from_params(ctx.params)
    config = model_config(ctx.params, N_CLASSES)
    model = build_model(config).to(ctx.device)
    d = load_unit(ctx)
    tr, va = load_split(ctx, len(d.x_train))
    x_tr, y_tr = d.x_train[tr], d.y_train[tr]
    if variant == "augmented":
        x_tr, y_tr = augment_set(x_tr, y_tr, r.bright, r.dark)
    x_tr, x_va_unit, y_va = to_signed(x_tr), d.x_train[va], d.y_train[va]
    x_va, x_te_unit, y_te = to_signed(x_va_unit), d.x_test, d.y_test
    x_te = to_signed(x_te_unit)
    del d
    if r.plain:  # the [0, 1] copies are only needed to make the views
        x_va_unit = x_te_unit = None

    # With test-time views the model is chosen on their averaged validation accuracy (`val_acc_tta`); the
    # course's single-view curve (`val_acc`) is kept beside it, with its own best state, so both protocols
    # come out of one run.
    views, plain_best = r.views(), BestState()
    select = "val_acc" if r.plain else "val_acc_tta"

    def evaluate(m, epoch) -> dict:
        row = {"val_acc": safe_accuracy(m, x_va, y_va, r.eval_batch)}
        if not r.plain:
            plain_best.offer(m, epoch, row["val_acc"])
            row["val_acc_tta"] = view_averaged_accuracy(m, x_va_unit, y_va, r.eval_batch, views)
        return row

    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    batches = TensorBatches([x_tr, y_tr], r.batch_size, generator=ctx.generator)
    hist = fit(model, opt, batches, cross_entropy, r.epochs, desc=f"cifar_train@{variant}",
               evaluate=evaluate, select=select, scheduler=r.scheduler(opt))
    # fit restored the best-validation state: the test set is used once, on the model already chosen.
    chosen = hist.best if hist.best and finite(hist.best.get(select)) is not None else None
    model.eval()
    test_acc = None
    if chosen:
        test_acc = finite(safe_accuracy(model, x_te, y_te, r.eval_batch) if r.plain
                          else view_averaged_accuracy(model, x_te_unit, y_te, r.eval_batch, views))
    plain = {}
    if not r.plain:
        plain = {"plain_best_val_acc": None, "plain_best_epoch": None, "plain_test_acc": None}
        if plain_best.state is not None:
            chosen_state = copy.deepcopy(model.state_dict())
            model.load_state_dict(plain_best.state)
            plain = {"plain_best_val_acc": plain_best.value, "plain_best_epoch": plain_best.epoch,
                     "plain_test_acc": finite(safe_accuracy(model, x_te, y_te, r.eval_batch))}
            model.load_state_dict(chosen_state)
    with ctx.plots() as out:
        plot_history(hist.rows, out, f"CIFAR-10 tiny CNN, {variant} training set", ctx.source, name=CURVES,
                     panels={"cross-entropy (train)": ["train_loss"],
                             "accuracy (%)": ["val_acc"] + ([] if r.plain else ["val_acc_tta"])},
                     diverged_at=hist.diverged_at)
    ctx.save_checkpoint(ctx.model_path(f"{variant}.pt"), model, config,
                        extra=None if r.plain else {"test_views": list(r.test_views)})
    ctx.write_metrics({
        "best_val_acc": chosen[select] if chosen else None, "best_epoch": chosen["epoch"] if chosen else None,
        "final_val_acc": finite(hist.last.get(select)), "test_acc": test_acc, "epochs": hist.epochs_run,
        "n_train_images": len(x_tr), "n_val": len(y_va), "n_test": len(y_te), **divergence(hist),
        **({} if r.plain else {"test_views": list(r.test_views), **plain}),
    }, selection=SELECTION_TRAIN if r.plain else SELECTION_TRAIN_TTA)
    samples_per_s = len(x_tr) * hist.epochs_run / max(hist.seconds, 1e-9)
    ctx.time(train_seconds=round(hist.seconds, 1), samples_per_second=round(samples_per_s))
    warn_diverged(ctx, hist)
    log.info("%s: best val acc %s at epoch %s, test acc of that model %s (%.0f samples/s)", variant,
             chosen and chosen[select], chosen and chosen["epoch"], test_acc, samples_per_s)


def run_augment_report(ctx: StageContext) -> None:
    ctx.step = "augment_compare"
    ctx.use_data(DATASET)
    curves = {v: read_curve(PLOTS_ROOT / ctx.family / f"train_{v}" / f"{CURVES}.csv") for v in TRAIN_VARIANTS}
    tta = all(rows_v and "val_acc_tta" in rows_v[0] for rows_v in curves.values())
    acc_columns = ("val_acc_tta", "val_acc") if tta else ("val_acc",)
    rows = join_on_epoch(curves, ("train_loss",) + acc_columns)
    with ctx.plots() as out:
        plot_history(rows, out, "CIFAR-10 tiny CNN: augmentation study", ctx.source, name="compare",
                     panels={"cross-entropy (train)": [f"{v} train_loss" for v in TRAIN_VARIANTS],
                             "validation accuracy (%)": [f"{v} {c}" for c in acc_columns for v in TRAIN_VARIANTS]})
    best = {(v, c): best_of(rows_v, c) for v, rows_v in curves.items() for c in acc_columns}

    def gain(aug_column: str, base_column: str) -> float | None:
        a, b = best["augmented", aug_column], best["baseline", base_column]
        return None if a is None or b is None else a - b

    # The first column is the one each run was chosen on: with test-time views both runs are evaluated alike.
    head = acc_columns[0]
    metrics = {"best_val_acc_baseline": best["baseline", head], "best_val_acc_augmented": best["augmented", head],
               "augmented_gain": gain(head, head)}
    if tta:
        metrics.update({
            "test_views": ctx.params.sub("cifar").sub("train").list("test_views", item_type=str, min_len=1),
            "plain_best_val_acc_baseline": best["baseline", "val_acc"],
            "plain_best_val_acc_augmented": best["augmented", "val_acc"],
            "plain_augmented_gain": gain("val_acc", "val_acc"),
            # augmentation at training and at test time against none at all
            "tta_augmented_gain_over_plain_baseline": gain("val_acc_tta", "val_acc")})
    ctx.write_metrics(metrics, selection="each run's best epoch on the validation images (see train_<variant>.json)"
                      + ("; plain_*: the course's single view" if tta else ""))
    log.info("best val acc: baseline %s, augmented %s (gain %s)", metrics["best_val_acc_baseline"],
             metrics["best_val_acc_augmented"], metrics["augmented_gain"])


def best_of(rows: list[dict], column: str) -> float | None:
    """The largest finite value of `column` over a curve's rows (None when there is none)."""
    values = [a for a in (r.get(column) for r in rows) if finite(a) is not None]
    return max(values) if values else None


# ============================================================================ self-supervision

def run_pretext(ctx: StageContext) -> None:
    r = PretextRecipe.from_params(ctx.params)
    config = model_config(ctx.params, len(PRETEXT_NAMES))
    model = build_model(config).to(ctx.device)
    d = load_unit(ctx)
    pretext_idx, _ = labelled_split(len(d.x_train), r.n_labelled)
    xp, yp = rotation_pretext(d.x_train[torch.as_tensor(pretext_idx, device=ctx.device)])
    xp = to_signed(xp)
    xt, yt = rotation_pretext(d.x_test)
    xt = to_signed(xt)
    del d

    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    # The per-epoch test curve is drawn only: the model kept is the final epoch's.
    hist = fit(model, opt, TensorBatches([xp, yp], r.batch_size, generator=ctx.generator), cross_entropy,
               r.epochs, desc="cifar_pretext",
               evaluate=lambda m, _e: {"test_rotation_acc": safe_accuracy(m, xt, yt, r.eval_batch)})
    final = finite(hist.last.get("test_rotation_acc")) if not hist.diverged else None
    with ctx.plots() as out:
        plot_history(hist.rows, out, "CIFAR-10 rotation pretext (3 classes)", ctx.source, name=CURVES,
                     panels={"cross-entropy (train)": ["train_loss"], "accuracy (%)": ["test_rotation_acc"]},
                     diverged_at=hist.diverged_at)
    ctx.save_checkpoint(ctx.model_path(PRETEXT_MODEL), model, config)
    ctx.write_metrics({"final_test_rotation_acc": final, "chance": 1.0 / len(PRETEXT_NAMES),
                       "epochs": hist.epochs_run, "n_pretext_images": len(xp), **divergence(hist)},
                      selection=SELECTION_FINAL)
    ctx.time(train_seconds=round(hist.seconds, 1),
             samples_per_second=round(len(xp) * hist.epochs_run / max(hist.seconds, 1e-9)))
    warn_diverged(ctx, hist)
    log.info("pretext: rotation accuracy on test images %s after %d epochs", final, hist.epochs_run)


def ssl_optimizer(ctx: StageContext, model: CifarCNN, r: SslRecipe, variant: str) -> torch.optim.Optimizer:
    """Adam; for the transfer variant the pretext weights of `transfer_layers` at `lr_transferred`, the
    freshly initialised rest (the head at least) at `lr`."""
    if variant != "transfer":
        return torch.optim.Adam(model.parameters(), lr=r.lr)
    path = ctx.model_path(PRETEXT_MODEL)
    if not path.exists():
        raise MissingDataError(f"{path}: not found; run `dvc repro cifar_pretext` first")
    pretext = load_checkpoint(path)
    try:
        copied = transfer_features(pretext["state_dict"], model, r.transfer_layers)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}; rebuild it with `dvc repro cifar_pretext`") from None
    log.info("transferred %d tensors from the pretext model: %s", len(copied), ", ".join(copied))
    return torch.optim.Adam(transfer_param_groups(model, r.lr_transferred, r.lr, r.transfer_layers))


def ssl_curve(hist) -> list[dict]:
    """The evaluated epochs (every `eval_every`, and the last); after a divergence also every epoch since the
    last evaluation, so that the run-up to it is visible."""
    evaluated = [row["epoch"] for row in hist.rows if "test_acc" in row]
    since = evaluated[-1] if evaluated else 0
    return [{"epoch": row["epoch"], "train_loss": row["train_loss"], "test_acc": row.get("test_acc")}
            for row in hist.rows if "test_acc" in row or (hist.diverged and row["epoch"] > since)]


def run_ssl_baseline(ctx: StageContext) -> None:
    run_ssl(ctx, "baseline")


def run_ssl_transfer(ctx: StageContext) -> None:
    run_ssl(ctx, "transfer")


def run_ssl(ctx: StageContext, variant: str) -> None:
    """The SSL stage `cifar_ssl_<variant>` (two stages: the transfer one also depends on the pretext model)."""
    if variant not in SSL_VARIANTS:
        raise ValueError(f"unknown SSL variant {variant!r}")
    r = SslRecipe.from_params(ctx.params, transfer=variant == "transfer")
    config = model_config(ctx.params, N_CLASSES)
    model = build_model(config).to(ctx.device)
    opt = ssl_optimizer(ctx, model, r, variant)
    # The baseline's curve is read before training, so that a missing one fails at once, not after the run.
    base = read_curve(PLOTS_ROOT / ctx.family / "ssl_baseline" / f"{CURVES}.csv") if variant == "transfer" else None
    d = load_unit(ctx)
    _, lab = labelled_split(len(d.x_train), r.n_labelled)
    lab = torch.as_tensor(lab, device=ctx.device)
    x_l, y_l = to_signed(d.x_train[lab]), d.y_train[lab]
    x_te, y_te = to_signed(d.x_test), d.y_test
    del d

    # One full batch, the same every epoch: no shuffling, no copies.
    full = TensorBatches([x_l, y_l], batch_size=len(x_l), shuffle=False)
    hist = fit(model, opt, full, cross_entropy, r.epochs, desc=f"cifar_ssl@{variant}", eval_every=r.eval_every,
               evaluate=lambda m, _e: {"test_acc": safe_accuracy(m, x_te, y_te, r.eval_batch)})
    curve = ssl_curve(hist)
    metrics = {"final_test_acc": None if hist.diverged else finite(hist.last.get("test_acc")),
               **best_on_test(curve), "epochs": hist.epochs_run, "n_labelled": len(y_l), "n_test": len(y_te),
               **divergence(hist),
               **({"transferred_layers": list(r.transfer_layers), "lr_transferred": r.lr_transferred}
                  if r.transfer_layers is not None else {})}
    title = f"CIFAR-10, {len(y_l)} labelled images: {variant}"
    with ctx.plots() as out:
        plot_history(curve, out, title, ctx.source, name=CURVES, diverged_at=hist.diverged_at,
                     panels={"cross-entropy (train)": ["train_loss"], "test accuracy (%)": ["test_acc"]})
        if base is not None:
            metrics.update(gains_over_baseline(base, metrics))
            plot_history(join_on_epoch({"baseline (from scratch)": base, "transfer (rotation pretext)": curve},
                                ("train_loss", "test_acc")), out,
                         f"CIFAR-10, {len(y_l)} labelled images: baseline vs transfer", ctx.source, name="compare",
                         panels={"cross-entropy (train)": ["baseline (from scratch) train_loss",
                                                           "transfer (rotation pretext) train_loss"],
                                 "test accuracy (%)": ["baseline (from scratch) test_acc",
                                                       "transfer (rotation pretext) test_acc"]})
    ctx.save_checkpoint(ctx.model_path(f"ssl_{variant}.pt"), model, config)
    ctx.write_metrics(metrics, selection=SELECTION_SSL)
    ctx.time(train_seconds=round(hist.seconds, 1),
             epochs_per_second=round(hist.epochs_run / max(hist.seconds, 1e-9), 1))
    warn_diverged(ctx, hist)
    log.info("ssl_%s: final test acc %s (test-selected best %s)", variant, metrics["final_test_acc"],
             metrics["test_selected_acc"])


def best_on_test(curve: list[dict]) -> dict:
    """The best point of the test curve and its epoch: chosen on the test set, hence the label."""
    points = [(row["test_acc"], row["epoch"]) for row in curve if finite(row.get("test_acc")) is not None]
    if not points:
        return {"test_selected_acc": None, "test_selected_epoch": None}
    best = max(points, key=lambda p: (p[0], -p[1]))  # the earliest epoch among ties
    return {"test_selected_acc": best[0], "test_selected_epoch": int(best[1])}


def gains_over_baseline(base_curve: list[dict], metrics: dict) -> dict:
    """Transfer minus baseline: final epoch (the result) and test-selected (the course's optimistic view)."""
    base_final = finite(base_curve[-1].get("test_acc")) if base_curve else None
    base_sel = best_on_test(base_curve)["test_selected_acc"]
    out = {}
    if base_final is not None and metrics["final_test_acc"] is not None:
        out["final_gain_over_baseline"] = metrics["final_test_acc"] - base_final
    if base_sel is not None and metrics["test_selected_acc"] is not None:
        out["test_selected_gain_over_baseline"] = metrics["test_selected_acc"] - base_sel
    return out


__all__ = ["AugmentRecipe", "TrainRecipe", "PretextRecipe", "SslRecipe", "TRAIN_VARIANTS", "SSL_VARIANTS",
           "run_augment", "run_train", "run_augment_report", "run_pretext", "run_ssl_baseline", "run_ssl_transfer"]
