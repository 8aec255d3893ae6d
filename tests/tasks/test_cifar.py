"""The CIFAR task module: recipes, the selection rules, and every training stage surviving divergence.

Stages run in-process (stage_main) in a temporary directory holding a tiny CIFAR-10 in its native layout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlsys.core.context import stage_main
from dlsys.core.errors import UserError
from dlsys.core.params import Params
from dlsys.data.cifar10 import SUBDIR, write_cifar_batches
from dlsys.features.augment import brighten, mirror, pick_views, to_signed
from dlsys.tasks import cifar

N_TRAIN, N_TEST, N_VAL, N_LABELLED = 240, 70, 40, 30


def tiny_params(**overrides) -> dict:
    p = {
        "seed": 0, "device": "cpu",
        "cifar": {
            "model": {"channels": [4, 4], "kernel": 5, "hidden": 8},
            "n_val": N_VAL, "eval_batch": 32,
            "augment": {"bright": 1.1, "dark": 0.9, "n_preview": 2},
            "train": {"epochs": 3, "batch_size": 50, "lr": 0.01, "lr_drop_epoch": 0, "lr_drop_factor": 0.1,
                      "test_views": ["original"]},
            "pretext": {"epochs": 2, "batch_size": 64, "lr": 0.001},
            "ssl": {"n_labelled": N_LABELLED, "epochs": 6, "eval_every": 2, "lr": 0.001, "lr_transferred": 1e-5,
                    "transfer_layers": ["conv1", "conv2", "fc1"]},
        },
    }
    for key, value in overrides.items():
        node = p
        *head, last = key.split(".")
        for part in head:
            node = node[part]
        node[last] = value
    return p


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A repository-like directory: params.yaml and data/raw/cifar10 (tiny, synthetic, learnable)."""
    rng = np.random.default_rng(0)

    def images(n):
        y = rng.integers(0, 10, n)
        # The class shows as the mean brightness, so a few epochs learn something.
        x = np.clip(rng.normal(y[:, None, None, None] * 20 + 30, 20, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y

    (x_tr, y_tr), (x_te, y_te) = images(N_TRAIN), images(N_TEST)
    raw = tmp_path / "data/raw/cifar10"
    write_cifar_batches(raw / SUBDIR, x_tr, y_tr, x_te, y_te, [f"class{i}" for i in range(10)])
    (raw / "dataset.json").write_text(json.dumps({"source": "synthetic"}))
    monkeypatch.chdir(tmp_path)
    write_params(tiny_params())
    return tmp_path


def write_params(p: dict) -> None:
    Path("params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def run(stage: str, fn, *argv: str) -> None:
    stage_main(stage, fn, "test", argv=list(argv),
               **({"variant": "variant", "choices": cifar.TRAIN_VARIANTS} if stage == "cifar_train" else {}))


def metrics(step: str) -> dict:
    return json.loads(Path(f"metrics/cifar/{step}.json").read_text())


def curve(step: str, name: str = "curves") -> list[dict]:
    import csv

    with open(f"plots/cifar/{step}/{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------- recipes

def test_model_config_reads_the_model_group():
    p = Params(tiny_params())
    assert cifar.model_config(p, 3) == {"n_classes": 3, "channels": [4, 4], "kernel": 5, "hidden": 8}
    m = cifar.build_model(cifar.model_config(p, 3))
    assert m.head.out_features == 3 and m.fc1.out_features == 8 and m.conv2.out_channels == 4


def test_model_config_refuses_three_conv_widths():
    with pytest.raises(UserError, match="cifar.model.channels"):
        cifar.model_config(Params(tiny_params(**{"cifar.model.channels": [4, 4, 4]})), 10)


def test_a_zero_learning_rate_is_refused():
    with pytest.raises(UserError, match="cifar.train.lr"):
        cifar.TrainRecipe.from_params(Params(tiny_params(**{"cifar.train.lr": 0})))


def test_a_learning_rate_drop_outside_0_to_1_is_refused():
    for factor in (0, 1.5):
        with pytest.raises(UserError, match="cifar.train.lr_drop_factor"):
            cifar.TrainRecipe.from_params(Params(tiny_params(**{"cifar.train.lr_drop_factor": factor})))


# ------------------------------------------------------------------------- evaluation and selection helpers

def test_safe_accuracy_counts_argmax_hits_and_is_nan_for_non_finite_logits():
    x = torch.eye(4)
    y = torch.tensor([0, 1, 2, 0])
    ident = torch.nn.Identity()
    assert cifar.safe_accuracy(ident, x, y, batch=3) == pytest.approx(0.75)  # batches of 3 + 1
    broken = torch.nn.Linear(4, 4)
    with torch.no_grad():
        broken.weight.fill_(float("nan"))
    assert math.isnan(cifar.safe_accuracy(broken, x, y, batch=2))


class LeftRightModel(torch.nn.Module):
    """Fixed logits by which half of the image is brighter: [0, 1, −20] for the left, [0, −20, 0.9] for the
    right. Mean probabilities of an image and its mirror: [0.28, 0.37, 0.36], class 1; mean logits: class 0."""

    def forward(self, x):
        left = (x[..., :16].sum(dim=(1, 2, 3)) > x[..., 16:].sum(dim=(1, 2, 3)))[:, None]
        return torch.where(left, torch.tensor([0.0, 1.0, -20.0]), torch.tensor([0.0, -20.0, 0.9]))


def test_view_averaged_accuracy_averages_the_class_probabilities_of_the_views():
    x = torch.zeros(3, 3, 32, 32)
    x[0, :, :, :16] = 0.5      # brighter on the left
    x[1:, :, :, 16:] = 0.5     # brighter on the right
    model, both = LeftRightModel(), [lambda a: a, mirror]
    y = torch.tensor([1, 2, 2])
    assert cifar.view_averaged_accuracy(model, x, y, 2, [lambda a: a]) == pytest.approx(1.0)
    assert cifar.view_averaged_accuracy(model, x, y, 2, [mirror]) == pytest.approx(0.0)
    # Each image and its mirror give classes 1 and 2: their mean probabilities pick class 1 (mean logits, 0).
    assert cifar.view_averaged_accuracy(model, x, torch.tensor([1, 1, 1]), 2, both) == pytest.approx(1.0)
    # One view: the same as the course's plain accuracy on the signed images.
    assert cifar.view_averaged_accuracy(model, x, y, 2, both[:1]) == cifar.safe_accuracy(model, to_signed(x), y, 2)


def test_views_apply_to_the_unit_range_images_before_the_network_rescales_them():
    """brighter = min(1.1·x, 1) on [0, 1] images; the same clamp on the [-1, 1] images would differ near white."""
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32) * 0.2 + 0.8
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with torch.no_grad():
        right = model(to_signed(brighten(x, 1.1))).argmax(1)
        wrong = model(brighten(to_signed(x), 1.1)).argmax(1)
    assert (right != wrong).any()
    brighter = pick_views(["brighter"], 1.1, 0.9)
    assert cifar.view_averaged_accuracy(model, x, right, 16, brighter) == pytest.approx(1.0)


def test_view_averaged_accuracy_is_nan_for_non_finite_outputs():
    broken = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    with torch.no_grad():
        broken[1].bias.fill_(float("inf"))
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])
    assert math.isnan(cifar.view_averaged_accuracy(broken, x, y, 2, [lambda a: a, mirror]))


@pytest.mark.parametrize("views", [["original", "flipped"], [], ["mirrored", "mirrored"]])
def test_unknown_empty_or_repeated_test_views_are_refused(views):
    with pytest.raises(UserError, match="cifar.train.test_views"):
        cifar.TrainRecipe.from_params(Params(tiny_params(**{"cifar.train.test_views": views})))


def test_best_on_test_takes_the_highest_finite_point_earliest_first():
    rows = [{"epoch": 2, "test_acc": 0.3}, {"epoch": 4, "test_acc": 0.5}, {"epoch": 6, "test_acc": float("nan")},
            {"epoch": 8, "test_acc": 0.5}, {"epoch": 10, "test_acc": None}, {"epoch": 12, "test_acc": 0.4}]
    assert cifar.best_on_test(rows) == {"test_selected_acc": 0.5, "test_selected_epoch": 4}
    assert cifar.best_on_test([{"epoch": 1, "test_acc": None}]) == {"test_selected_acc": None,
                                                                    "test_selected_epoch": None}


def test_gains_compare_final_with_final_and_selected_with_selected():
    base = [{"epoch": 2, "test_acc": 0.6}, {"epoch": 4, "test_acc": 0.2}]
    got = cifar.gains_over_baseline(base, {"final_test_acc": 0.5, "test_selected_acc": 0.7})
    assert got["final_gain_over_baseline"] == pytest.approx(0.3)
    assert got["test_selected_gain_over_baseline"] == pytest.approx(0.1)
    # A diverged baseline (last row without a test value) has no final number to compare with.
    assert "final_gain_over_baseline" not in cifar.gains_over_baseline(
        [*base, {"epoch": 5, "test_acc": None}], {"final_test_acc": 0.5, "test_selected_acc": 0.7})


# ------------------------------------------------------------------------- stages

def test_the_split_is_carved_from_the_training_images(workdir):
    run("cifar_augment", cifar.run_augment)
    split = torch.load("data/features/cifar/split.pt", weights_only=True)
    tr, va = split["train"].tolist(), split["val"].tolist()
    assert len(va) == N_VAL and sorted(tr + va) == list(range(N_TRAIN))
    m = metrics("augment")
    assert m["n_train"] == N_TRAIN - N_VAL and m["n_augmented"] == 4 * (N_TRAIN - N_VAL) and m["labels_repeated"]


def test_train_selects_on_validation_and_tests_only_the_chosen_model(workdir, monkeypatch):
    """Validation accuracy is scripted to peak at epoch 1: the saved and tested model must be epoch 1's,
    and the test images must be seen exactly once, after training."""
    run("cifar_augment", cifar.run_augment)
    real = cifar.safe_accuracy
    scripted = iter([0.9, 0.1, 0.2])
    seen = {"val_states": [], "test_states": []}

    def spy(model, x, y, batch):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        if len(y) == N_VAL:
            seen["val_states"].append(state)
            return next(scripted)
        assert len(y) == N_TEST, len(y)
        seen["test_states"].append(state)
        return real(model, x, y, batch)

    monkeypatch.setattr(cifar, "safe_accuracy", spy)
    run("cifar_train", cifar.run_train, "baseline")
    m = metrics("train_baseline")
    assert m["best_epoch"] == 1 and m["best_val_acc"] == 0.9 and m["final_val_acc"] == 0.2
    assert "validation" in m["selection"] and "training" in m["selection"]
    assert len(seen["test_states"]) == 1, "the test set must be used once, on the chosen model"
    epoch1 = seen["val_states"][0]
    assert all(torch.equal(seen["test_states"][0][k], v) for k, v in epoch1.items())
    saved = torch.load("data/models/cifar/baseline.pt", weights_only=True)
    assert not saved["diverged"] and saved["config"]["n_classes"] == 10
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in epoch1.items())
    assert m["test_acc"] == pytest.approx(real(_loaded(saved), *_test_set(), 32))
    # The course's single view: no second protocol in the metrics or the curve.
    assert not [k for k in m if k.startswith("plain_") or k == "test_views"]
    assert "val_acc_tta" not in curve("train_baseline")[0]


def test_train_with_test_views_selects_on_their_average_and_keeps_the_single_view_protocol(workdir, monkeypatch,
                                                                                          capsys):
    """Scripted: the views' validation accuracy peaks at epoch 1, the single view's at epoch 3. The saved model
    and `test_acc` (with the views) are epoch 1's; `plain_*` are epoch 3's (test with one view); the test images
    are scored once per protocol, after training."""
    write_params(tiny_params(**{"cifar.train.test_views": ["original", "mirrored"]}))
    run("cifar_augment", cifar.run_augment)
    real_plain, real_views = cifar.safe_accuracy, cifar.view_averaged_accuracy
    plain_val, views_val = iter([0.2, 0.3, 0.8]), iter([0.9, 0.1, 0.2])
    seen = {"val": [], "test_plain": [], "test_views": []}

    def snapshot(model):
        return {k: v.clone() for k, v in model.state_dict().items()}

    def plain_spy(model, x, y, batch):
        if len(y) == N_VAL:
            seen["val"].append(snapshot(model))
            return next(plain_val)
        seen["test_plain"].append(snapshot(model))
        return real_plain(model, x, y, batch)

    def views_spy(model, x, y, batch, views):
        assert len(views) == 2 and torch.equal(views[1](x[:1]), mirror(x[:1]))
        assert x.min() >= 0 and x.max() <= 1, "views are made from the [0, 1] images"
        if len(y) == N_VAL:
            return next(views_val)
        seen["test_views"].append(snapshot(model))
        return real_views(model, x, y, batch, views)

    monkeypatch.setattr(cifar, "safe_accuracy", plain_spy)
    monkeypatch.setattr(cifar, "view_averaged_accuracy", views_spy)
    run("cifar_train", cifar.run_train, "augmented")
    m = metrics("train_augmented")
    assert (m["best_epoch"], m["best_val_acc"], m["final_val_acc"]) == (1, 0.9, 0.2)
    assert (m["plain_best_epoch"], m["plain_best_val_acc"]) == (3, 0.8)
    assert "best val acc 0.9 at epoch 1" in capsys.readouterr().err
    assert m["test_views"] == ["original", "mirrored"] and "val_acc_tta" in m["selection"]
    assert len(seen["test_views"]) == 1 and len(seen["test_plain"]) == 1
    epoch1, epoch3 = seen["val"][0], seen["val"][2]
    assert all(torch.equal(seen["test_views"][0][k], v) for k, v in epoch1.items())
    assert all(torch.equal(seen["test_plain"][0][k], v) for k, v in epoch3.items())
    saved = torch.load("data/models/cifar/augmented.pt", weights_only=True)
    assert saved["test_views"] == ["original", "mirrored"]
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in epoch1.items())
    rows = curve("train_augmented")
    assert [float(r["val_acc"]) for r in rows] == [0.2, 0.3, 0.8]
    assert [float(r["val_acc_tta"]) for r in rows] == [0.9, 0.1, 0.2]


def test_the_augmentation_report_compares_like_with_like_and_names_the_mixed_pair(workdir):
    """With test views both runs are compared on their averaged curves; the single-view gain and the gain of
    augmentation at training and test time over the plain baseline are reported beside it."""
    write_params(tiny_params(**{"cifar.train.test_views": ["original", "mirrored"]}))
    run("cifar_augment", cifar.run_augment)
    for v in cifar.TRAIN_VARIANTS:
        run("cifar_train", cifar.run_train, v)
    run("cifar_augment_report", cifar.run_augment_report)
    m = metrics("augment_compare")
    best = {(v, c): max(float(r[c]) for r in curve(f"train_{v}")) for v in cifar.TRAIN_VARIANTS
            for c in ("val_acc", "val_acc_tta")}
    assert m["best_val_acc_augmented"] == best["augmented", "val_acc_tta"]
    assert m["augmented_gain"] == pytest.approx(best["augmented", "val_acc_tta"] - best["baseline", "val_acc_tta"])
    assert m["plain_augmented_gain"] == pytest.approx(best["augmented", "val_acc"] - best["baseline", "val_acc"])
    assert m["tta_augmented_gain_over_plain_baseline"] == pytest.approx(
        best["augmented", "val_acc_tta"] - best["baseline", "val_acc"])
    assert m["test_views"] == ["original", "mirrored"]
    header = Path("plots/cifar/augment_compare/compare.csv").read_text().splitlines()[0]
    assert "baseline val_acc_tta" in header and "augmented val_acc" in header


@pytest.mark.parametrize("drop_epoch, expected", [(0, [0.01] * 5), (2, [0.01, 0.01, 0.005, 0.005, 0.0025])])
def test_train_drops_the_learning_rate_every_lr_drop_epoch_epochs(workdir, monkeypatch, drop_epoch, expected):
    """cifar.train.lr_drop_epoch reaches the optimiser: the lr of every training step, epoch by epoch
    (0: the course's one constant lr)."""
    write_params(tiny_params(**{"cifar.train.epochs": 5, "cifar.train.lr_drop_epoch": drop_epoch,
                                "cifar.train.lr_drop_factor": 0.5}))
    run("cifar_augment", cifar.run_augment)
    step_lrs = []
    real_fit = cifar.fit

    def watching(model, opt, batches, loss_fn, epochs, **kwargs):
        def loss(m, batch):
            step_lrs.append(opt.param_groups[0]["lr"])
            return loss_fn(m, batch)

        return real_fit(model, opt, batches, loss, epochs, **kwargs)

    monkeypatch.setattr(cifar, "fit", watching)
    run("cifar_train", cifar.run_train, "baseline")
    steps_per_epoch = math.ceil((N_TRAIN - N_VAL) / 50)
    assert step_lrs == pytest.approx([lr for lr in expected for _ in range(steps_per_epoch)])


def _loaded(ckpt):
    model = cifar.build_model(ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _test_set():
    from dlsys.data.cifar10 import load_cifar10
    from dlsys.features.augment import to_signed, to_unit

    d = load_cifar10("data/raw/cifar10")
    return to_signed(to_unit(d.x_test)), torch.as_tensor(d.y_test)


def test_ssl_headlines_the_final_epoch_and_labels_the_test_selected_point(workdir, monkeypatch):
    """The test curve is scripted to peak before the end: the headline must stay the final epoch's."""
    run("cifar_pretext", cifar.run_pretext)
    real = cifar.safe_accuracy
    for step, fn, script in (("ssl_baseline", cifar.run_ssl_baseline, [0.5, 0.9, 0.3]),
                             ("ssl_transfer", cifar.run_ssl_transfer, [0.6, 0.2, 0.4])):
        values = iter(script)
        monkeypatch.setattr(cifar, "safe_accuracy",
                            lambda m, x, y, b: next(values) if len(y) == N_TEST else real(m, x, y, b))
        run(f"cifar_{step}", fn)
        m, rows = metrics(step), curve(step)
        assert [int(r["epoch"]) for r in rows] == [2, 4, 6]  # every eval_every epochs, via fit's eval_every
        assert [float(r["test_acc"]) for r in rows] == script
        assert m["final_test_acc"] == script[-1]
        assert m["test_selected_acc"] == max(script)
        assert m["test_selected_epoch"] == 2 * (script.index(max(script)) + 1)
        assert "best_test_acc" not in m and m["selection"].startswith("final epoch")
        assert "test_selected" in m["selection"]
    base, tra = metrics("ssl_baseline"), metrics("ssl_transfer")
    assert tra["final_gain_over_baseline"] == pytest.approx(tra["final_test_acc"] - base["final_test_acc"])
    assert tra["test_selected_gain_over_baseline"] == pytest.approx(
        tra["test_selected_acc"] - base["test_selected_acc"])
    assert Path("plots/cifar/ssl_transfer/compare.png").stat().st_size > 1000
    # The transfer model starts from the pretext weights: with a 1e-5 lr they barely move.
    pre = torch.load("data/models/cifar/pretext.pt", weights_only=True)["state_dict"]
    tra_w = torch.load("data/models/cifar/ssl_transfer.pt", weights_only=True)["state_dict"]
    assert (tra_w["conv1.weight"] - pre["conv1.weight"]).abs().max() < 1e-3


def test_transfer_of_the_conv_layers_only_starts_fc1_fresh_at_the_new_layers_lr(workdir):
    """transfer_layers [conv1, conv2]: those start from (and, at lr 1e-5, stay near) the pretext weights; fc1 is
    not copied; the metrics name the transferred layers. (Which lr each group gets: tests/models.)"""
    run("cifar_pretext", cifar.run_pretext)
    write_params(tiny_params(**{"cifar.ssl.transfer_layers": ["conv1", "conv2"]}))
    run("cifar_ssl_baseline", cifar.run_ssl_baseline)
    run("cifar_ssl_transfer", cifar.run_ssl_transfer)
    assert metrics("ssl_transfer")["transferred_layers"] == ["conv1", "conv2"]
    assert metrics("ssl_transfer")["lr_transferred"] == 1e-5
    assert "transferred_layers" not in metrics("ssl_baseline") and "lr_transferred" not in metrics("ssl_baseline")
    pre = torch.load("data/models/cifar/pretext.pt", weights_only=True)["state_dict"]
    tra = torch.load("data/models/cifar/ssl_transfer.pt", weights_only=True)["state_dict"]
    for name in ("conv1.weight", "conv2.weight"):
        assert (tra[name] - pre[name]).abs().max() < 1e-3, name
    # a copied fc1, at lr_transferred 1e-5 for six steps, would stay within 1e-3 of the pretext's
    assert (tra["fc1.weight"] - pre["fc1.weight"]).abs().max() > 0.05


def test_a_pretext_model_of_another_shape_is_refused_for_its_layers_that_differ_in_one_line(workdir, capsys):
    """Pretext with FC 8, SSL model with FC 6: transferring fc1 is one clear line (no traceback, nothing
    written); the conv layers alone still transfer."""
    write_params(tiny_params(**{"cifar.model.hidden": 8}))
    run("cifar_pretext", cifar.run_pretext)
    write_params(tiny_params(**{"cifar.model.hidden": 6}))
    run("cifar_ssl_baseline", cifar.run_ssl_baseline)
    with pytest.raises(SystemExit) as exc:
        run("cifar_ssl_transfer", cifar.run_ssl_transfer)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cannot transfer fc1.weight" in err and "dvc repro cifar_pretext" in err
    assert "Traceback" not in err and not Path("metrics/cifar/ssl_transfer.json").exists()
    write_params(tiny_params(**{"cifar.model.hidden": 6, "cifar.ssl.transfer_layers": ["conv1", "conv2"]}))
    run("cifar_ssl_transfer", cifar.run_ssl_transfer)
    assert metrics("ssl_transfer")["transferred_layers"] == ["conv1", "conv2"]


def test_transfer_refuses_an_unknown_layer_in_one_line(workdir, capsys):
    run("cifar_pretext", cifar.run_pretext)
    write_params(tiny_params(**{"cifar.ssl.transfer_layers": ["conv1", "head"]}))
    with pytest.raises(SystemExit) as exc:
        run("cifar_ssl_transfer", cifar.run_ssl_transfer)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cifar.ssl.transfer_layers" in err and "'head'" in err


def test_transfer_refuses_a_diverged_pretext_model(workdir, capsys):
    write_params(tiny_params(**{"cifar.pretext.lr": 1e30}))
    run("cifar_pretext", cifar.run_pretext)
    write_params(tiny_params())
    with pytest.raises(SystemExit) as exc:
        run("cifar_ssl_transfer", cifar.run_ssl_transfer)
    assert exc.value.code == 2 and "diverged" in capsys.readouterr().err


def test_transfer_without_the_baseline_curve_fails_before_training(workdir, capsys):
    run("cifar_pretext", cifar.run_pretext)
    with pytest.raises(SystemExit) as exc:
        run("cifar_ssl_transfer", cifar.run_ssl_transfer)
    assert exc.value.code == 2 and "ssl_baseline/curves.csv" in capsys.readouterr().err
    assert not Path("metrics/cifar/ssl_transfer.json").exists()
    assert not Path("data/models/cifar/ssl_transfer.pt").exists()


DIVERGING = {
    "cifar_train@baseline": ("cifar_train", cifar.run_train, ("baseline",), "train_baseline", "baseline.pt",
                             {"cifar.train.lr": 1e30}),
    "cifar_train@augmented": ("cifar_train", cifar.run_train, ("augmented",), "train_augmented", "augmented.pt",
                              {"cifar.train.lr": 1e30}),
    "cifar_pretext": ("cifar_pretext", cifar.run_pretext, (), "pretext", "pretext.pt", {"cifar.pretext.lr": 1e30}),
    "cifar_ssl_baseline": ("cifar_ssl_baseline", cifar.run_ssl_baseline, (), "ssl_baseline", "ssl_baseline.pt",
                           {"cifar.ssl.lr": 1e30}),
    "cifar_ssl_transfer": ("cifar_ssl_transfer", cifar.run_ssl_transfer, (), "ssl_transfer", "ssl_transfer.pt",
                           {"cifar.ssl.lr": 1e30, "cifar.ssl.lr_transferred": 1e30}),
}


@pytest.mark.parametrize("name", list(DIVERGING))
def test_every_training_stage_survives_a_diverging_learning_rate(workdir, name):
    stage, fn, argv, step, model, lr = DIVERGING[name]
    if stage == "cifar_train":
        run("cifar_augment", cifar.run_augment)
    if stage == "cifar_ssl_transfer":  # needs a good pretext model and the baseline's curve
        run("cifar_pretext", cifar.run_pretext)
        run("cifar_ssl_baseline", cifar.run_ssl_baseline)
    write_params(tiny_params(**lr))
    run(stage, fn, *argv)  # returns: exit status 0

    m = metrics(step)
    assert m["diverged"] is True and isinstance(m["diverged_at_epoch"], int)
    assert m["epochs"] == m["diverged_at_epoch"]  # stopped there
    text = Path(f"metrics/cifar/{step}.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    headline = {"train_baseline": "test_acc", "train_augmented": "test_acc", "pretext": "final_test_rotation_acc",
                "ssl_baseline": "final_test_acc", "ssl_transfer": "final_test_acc"}[step]
    assert m[headline] is None  # nothing learnt is reported as a result
    for ext in ("csv", "png"):
        assert Path(f"plots/cifar/{step}/curves.{ext}").stat().st_size > 0
    rows = curve(step)
    assert int(rows[-1]["epoch"]) == m["diverged_at_epoch"]
    if step.startswith("ssl"):  # every epoch since the last evaluation: the finite first epoch too
        assert [int(r["epoch"]) for r in rows] == [1, 2] and math.isfinite(float(rows[0]["train_loss"]))
    ckpt = torch.load(f"data/models/cifar/{model}", weights_only=True)
    finite = all(bool(torch.isfinite(t).all()) for t in ckpt["state_dict"].values() if t.is_floating_point())
    assert ckpt["diverged"] is (not finite) and ckpt["diverged"]  # the NaN model is never saved as good
