"""The MNIST family's recipe (dlsys.tasks.mnist): params that would make an experiment meaningless are
refused with the reason, run states, curves, evaluation and the training recipe on tiny tensors."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from dlsys.compression.svd import SubspaceSVD
from dlsys.core.context import load_checkpoint, stage_main
from dlsys.core.errors import UserError
from dlsys.core.overlay import apply_dotted
from dlsys.core.outputs import load_torch
from dlsys.core.params import Params
from dlsys.data.registry import acquire
from dlsys.models.mlp import MLP, MLPConfig
from dlsys.tasks import mnist
from dlsys.tasks.mnist import (MnistTensors, RunStateRule, TrainConfig, check_rank, curve_rows, evaluate,
                               learning_rate, n_compressed, random_shift, sweep_ranks, train_classifier, windowed)

BASELINE_SHAPES = [(1024, 784)] + [(1024, 1024)] * 4 + [(10, 1024)]
TINY_SHAPES = [(64, 784)] + [(64, 64)] * 4 + [(10, 64)]
TRAIN = {"optimizer": "adam", "lr": 0.01, "epochs": 3, "batch_size": 32}


@pytest.mark.parametrize("lr", [0, 0.0, -1e-3])
def test_a_learning_rate_that_trains_nothing_is_refused_with_the_reason(lr):
    with pytest.raises(UserError, match=r"'mnist\.train\.lr' must be (> 0|>= 0)"):
        TrainConfig.from_params(Params({"mnist": {"train": {**TRAIN, "lr": lr}}}).sub("mnist.train"))


def test_a_positive_learning_rate_is_kept_even_a_diverging_one():
    assert learning_rate(Params({"lr": 1e-4})) == 1e-4
    assert learning_rate(Params({"lr": 1e30})) == 1e30  # divergence is recorded by the stage, not refused


def test_a_rank_above_min_m_n_is_refused_naming_the_key_and_the_largest_valid_rank():
    assert check_rank("mnist.svd.rank", 64, TINY_SHAPES, 5) == 64
    with pytest.raises(UserError, match=r"'mnist\.svd\.rank' is 5000.*largest valid rank is 64$"):
        check_rank("mnist.svd.rank", 5000, TINY_SHAPES, 5)
    # the baseline: W1 is 1024×784, so 784 is the largest rank that compresses every matrix
    check_rank("mnist.svd.rank", 784, BASELINE_SHAPES, 5)
    with pytest.raises(UserError, match="largest valid rank is 784"):
        check_rank("mnist.svd.rank", 785, BASELINE_SHAPES, 5)
    # only the compressed matrices count: a narrow output layer does not limit the rank
    check_rank("mnist.svd.rank", 64, [(64, 784), (64, 64), (3, 64)], 2)


def test_the_sweep_allows_full_and_refuses_a_rank_no_matrix_has():
    q = Params({"ranks": [5, "full", 64], "compress": {"n_compressed": 5}})
    assert sweep_ranks(q, TINY_SHAPES, 5) == [5, None, 64]
    with pytest.raises(UserError, match=r"'mnist\.svd\.ranks' is 65.*largest valid rank is 64"):
        sweep_ranks(Params({"ranks": [10, 65]}), TINY_SHAPES, 5)


def test_the_output_layer_stays_dense():
    assert n_compressed(Params({"compress": {"n_compressed": 5}}), TINY_SHAPES) == 5
    with pytest.raises(UserError, match=r"n_compressed' must be < 6"):
        n_compressed(Params({"compress": {"n_compressed": 6}}), TINY_SHAPES)


RULE = RunStateRule(stall_loss_fraction=0.9, overfit_loss_rise=0.05)


@pytest.mark.parametrize("diverged, final_loss, test_losses, state", [
    (True, None, [], "diverges"),
    (False, float("nan"), [2.3], "diverges"),
    (False, 6e30, [2.3, 2.3], "diverges"),                # finite but exploded (a saturated sigmoid net)
    (False, 10 * math.log(10) - 1e-6, [2.3, 2.3], "stalls"),
    (False, 2.30, [2.30, 2.30], "stalls"),               # the loss of a uniform guess over 10 classes
    (False, 0.9 * math.log(10) + 1e-9, [2.0, 1.9], "stalls"),
    (False, 0.2, [0.50, 0.40, 0.43], "overfits"),        # test loss 7.5% above its lowest epoch
    (False, 0.2, [0.50, 0.40, 0.41], "learns"),          # 2.5%: within the allowed rise
    (False, 0.2, [0.50, 0.45, 0.40], "learns"),
    (False, 0.2, [0.40], "learns"),                      # one epoch: no trend to judge
])
def test_every_run_gets_one_stated_state(diverged, final_loss, test_losses, state):
    assert RULE.state(diverged, final_loss, test_losses) == state


def test_windowed_curve_ends_at_the_first_non_finite_loss():
    assert windowed([4.0, 2.0, 3.0, 1.0, 2.0], 2) == [(2, 3.0), (4, 2.0), (5, 2.0)]
    out = windowed([3.0, 1.0, 5.0, float("inf"), 1.0, 1.0], 2)
    assert out[:2] == [(2, 2.0), (3, 5.0)]  # the finite part of the diverging window, at its last iteration
    assert out[2][0] == 4 and math.isnan(out[2][1]) and len(out) == 3


def test_curve_rows_keep_each_curve_at_its_own_iterations():
    rows = curve_rows({"a": [(2, 1.0), (4, 0.5)], "b": [(2, 3.0), (3, 9e9), (4, float("nan"))]})
    assert [r["iteration"] for r in rows] == [2, 3, 4]
    assert rows[1] == {"iteration": 3, "a": None, "b": 9e9}  # not misplaced at another curve's iteration
    assert rows[1]["a"] is None and math.isnan(rows[2]["b"])


def test_random_shift_moves_each_image_within_bounds():
    img = torch.zeros(50, 28, 28)
    img[:, 14, 14] = 1.0
    out = random_shift(img.reshape(50, 784), 2, torch.Generator().manual_seed(0)).reshape(50, 28, 28)
    assert torch.all(out.sum(dim=(1, 2)) == 1.0)
    pos = out.reshape(50, -1).argmax(1)
    r, c = pos // 28, pos % 28
    assert int((r - 14).abs().max()) <= 2 and int((c - 14).abs().max()) <= 2
    assert len(set(pos.tolist())) > 5  # offsets differ per image


class _Fixed(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[x[:, 0].long()]


def test_evaluate_counts_exactly_and_marks_a_non_finite_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    x = torch.arange(4.0)[:, None]
    res = evaluate(_Fixed(logits), x, torch.tensor([0, 1, 1, 1]), batch_size=3)
    assert res["acc"] == 0.75  # the exact fraction, batches of 3 and 1
    assert res["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 1, 1]))))
    bad = evaluate(_Fixed(torch.full((4, 2), float("nan"))), x, torch.tensor([0, 1, 1, 1]))
    assert math.isnan(bad["loss"])


def _blobs(n=400, seed=0) -> MnistTensors:
    """Ten well-separated classes in pixel space (a class lights its own 78-pixel band)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = 0.1 * torch.rand(n, 784, generator=g)
    for c in range(10):
        x[y == c, c * 78:(c + 1) * 78] += 0.8
    return MnistTensors(x[:300], y[:300], x[300:], y[300:], "synthetic")


def test_train_classifier_learns_and_records_test_curves():
    data = _blobs()
    model = MLP(MLPConfig(hidden=[32, 32]), generator=torch.Generator().manual_seed(0))
    hist = train_classifier(model, data, TrainConfig(**TRAIN), torch.Generator().manual_seed(0), train_eval_n=50)
    assert not hist.diverged and hist.epochs_run == 3
    assert hist.rows[-1]["test_acc"] > 0.9  # chance is 0.1
    assert hist.rows[-1]["test_err"] == pytest.approx(1 - hist.rows[-1]["test_acc"])
    assert {"train_err", "train_eval_loss", "test_loss"} <= set(hist.rows[-1])


def test_a_diverging_learning_rate_is_recorded_not_raised():
    data = _blobs()
    model = MLP(MLPConfig(hidden=[32, 32]), generator=torch.Generator().manual_seed(0))
    hist = train_classifier(model, data, TrainConfig(**{**TRAIN, "lr": 1e30}), torch.Generator().manual_seed(0))
    assert hist.diverged and hist.diverged_at == hist.epochs_run == 1
    assert not math.isfinite(hist.rows[-1]["train_loss"]) and "test_acc" not in hist.rows[-1]


GRID = {"lr": [1e30, 1e-2], "dropout_hidden": [0.0, 0.5], "n_val": 60}


def _select(data: MnistTensors):
    from types import SimpleNamespace

    def make_model():
        return MLP(MLPConfig(hidden=[32, 32], dropout_hidden=0.2), generator=torch.Generator().manual_seed(0))

    return mnist.select_and_refit(SimpleNamespace(seed=3), make_model, data, TrainConfig(**TRAIN),
                                  mnist.SettingGrid.from_params(Params(GRID)), desc="t")


def test_the_setting_is_chosen_on_carved_validation_images_and_refit_on_all_training_images(monkeypatch):
    """Four settings: the diverging lr never wins; the winner is the best validation score; the refit run
    trains on every training image with the chosen setting, and the model says which dropout it has.
    Bugs caught: choosing on test data, a NaN score winning max(), refitting with the wrong setting or on
    the reduced training set."""
    data = _blobs()
    runs = []  # (training images, scored images, lr) of every run select_and_refit makes
    real_train = mnist.train_classifier

    def spy(model, d, cfg, *args, **kwargs):
        runs.append((len(d.x_train), len(d.x_test), cfg.lr))
        return real_train(model, d, cfg, *args, **kwargs)

    monkeypatch.setattr(mnist, "train_classifier", spy)
    chosen = _select(data)
    assert runs == [(240, 60, 1e30), (240, 60, 1e30), (240, 60, 1e-2), (240, 60, 1e-2), (300, 100, 1e-2)]
    c = chosen.candidates
    assert [(r["lr"], r["dropout_hidden"]) for r in c] == [(1e30, 0.0), (1e30, 0.5), (1e-2, 0.0), (1e-2, 0.5)]
    assert [r["diverged"] for r in c] == [True, True, False, False] and c[0]["val_acc"] is None
    best = max(c[2:], key=lambda r: r["val_acc"])
    assert (chosen.lr, chosen.dropout_hidden) == (best["lr"], best["dropout_hidden"]) == (1e-2, 0.0)
    assert chosen.model.cfg.dropout_hidden == chosen.dropout_hidden
    assert all(d.p == chosen.dropout_hidden for d in list(chosen.model.drops)[1:])
    assert not chosen.hist.diverged and chosen.hist.last["test_acc"] > 0.9
    assert "60 validation images carved from the training set" in chosen.selection
    assert "all 300 training images" in chosen.selection


def test_the_choice_does_not_depend_on_the_test_set():
    """The same training set with scrambled test labels: every candidate's score and the choice repeat,
    whatever state torch's global generator (which draws the dropout masks) was left in."""
    data = _blobs()
    scrambled = MnistTensors(data.x_train, data.y_train, data.x_test, data.y_test.flip(0), data.source)
    torch.manual_seed(123)
    first = _select(data).candidates
    torch.manual_seed(456)
    assert first == _select(scrambled).candidates


def test_every_run_starts_from_the_same_global_generator_state(monkeypatch):
    """Dropout masks come from torch's global generator: each candidate and the refit must start from the
    same state of it, whatever ran before, or the settings differ in more than the setting."""
    states = []
    real_train = mnist.train_classifier

    def spy(*args, **kwargs):
        states.append(torch.get_rng_state().clone())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(mnist, "train_classifier", spy)
    torch.manual_seed(123)
    _select(_blobs())
    assert len(states) == 5 and all(torch.equal(s, states[0]) for s in states[1:])


def test_the_validation_images_are_training_images_disjoint_from_the_rest():
    data = _blobs()
    split = mnist.carve_validation(data, 60, seed=3)
    assert len(split.x_test) == 60 and len(split.x_train) == 240
    rows = {tuple(r.tolist()) for r in data.x_train}
    assert all(tuple(r.tolist()) in rows for r in split.x_test)
    assert not {tuple(r.tolist()) for r in split.x_test} & {tuple(r.tolist()) for r in split.x_train}
    with pytest.raises(UserError, match="'mnist.svd.finetune.n_val' = 300 validation images must be fewer than "
                                        "the 300 training images"):
        mnist.carve_validation(data, 300, seed=3, key="mnist.svd.finetune.n_val")


@pytest.mark.parametrize("grid, message", [
    ({"lr": [1e-3, 0.0]}, "'lr' must be > 0"),
    ({"lr": []}, "'lr' must be a list of at least 1"),
    ({"dropout_hidden": [0.2, 1.0]}, "'dropout_hidden' must be <= 0.99"),
    ({"dropout_hidden": "0.2"}, "'dropout_hidden' must be a finite number"),
])
def test_a_meaningless_setting_grid_is_refused_naming_the_key(grid, message):
    with pytest.raises(UserError, match=message):
        mnist.SettingGrid.from_params(Params({**GRID, **grid}))


def test_one_setting_means_no_choice_and_no_validation_split():
    grid = mnist.SettingGrid.from_params(Params({"lr": 1e-3, "dropout_hidden": 0.2, "n_val": 60}))
    assert grid.settings == [(1e-3, 0.2)]


def test_subspace_tracking_of_a_diverged_weight_returns_nan_instead_of_raising():
    """SVD in the loop with oversampling runs an SVD per step; a NaN weight mid-epoch must not crash."""
    W = torch.randn(40, 30, generator=torch.Generator().manual_seed(0))
    tracker = SubspaceSVD(W.shape, 4, oversample=3, init=W)
    A, B = tracker(torch.full_like(W, float("nan")))
    assert A.shape == (40, 4) and B.shape == (4, 30) and torch.isnan(A @ B).all()



# ------------------------------------------------------------------ the stages, in process, on tiny data

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "device": "cpu", "data.mnist.n_train": 300, "data.mnist.n_test": 100,
    "mnist.mlp.hidden": [64] * 5, "mnist.train.epochs": 2, "mnist.train.batch_size": 64,
    "mnist.init_study.hidden": [16] * 5, "mnist.init_study.epochs": 2, "mnist.init_study.log_every": 2,
    "mnist.init_study.batch_size": 64,
    "mnist.dropout_study.hidden": [16] * 5, "mnist.dropout_study.epochs": 2,
    "mnist.dropout_study.train_eval_n": 50, "mnist.dropout_study.batch_size": 64,
    "mnist.svd.finetune.epochs": 2, "mnist.svd.finetune.n_val": 60, "mnist.svd.in_loop.n_val": 60, "mnist.svd.in_loop.epochs": 2, "mnist.svd.finetune.batch_size": 64,
    "mnist.svd.in_loop.batch_size": 64, "mnist.svd.rank": 5, "mnist.svd.ranks": [5, "full"],
}
RUNS = {"mnist_train_mlp": mnist.run_train_mlp, "mnist_analyze_mlp": mnist.run_analyze_mlp,
        "mnist_init_study": mnist.run_init_study, "mnist_dropout_study": mnist.run_dropout_study,
        "mnist_compress_svd": mnist.run_compress_svd, "mnist_svd_finetune": mnist.run_svd_finetune,
        "mnist_svd_in_loop": mnist.run_svd_in_loop}


def _params(updates: dict) -> dict:
    return apply_dotted(yaml.safe_load((ROOT / "params.yaml").read_text()), {**updates})


def _stage(workdir: Path, stage: str, variant: str | None = None, **updates) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(_params({**TINY, **updates})))
    stage_main(stage, RUNS[stage], "doc", variant=None if variant is None else "optimizer",
               choices=mnist.INIT_OPTIMIZERS, argv=[] if variant is None else [variant])


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory) -> Path:
    """data/ with tiny synthetic MNIST and a baseline trained on it (finite weights)."""
    root = tmp_path_factory.mktemp("mnist_lab")
    acquire("mnist", Params(_params(TINY)), seed=0, root=root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        _stage(root, "mnist_train_mlp")
    assert not load_torch(root / "data/models/mnist/mlp.pt")["diverged"]
    return root / "data"


@pytest.fixture
def lab(lab_data, tmp_path, monkeypatch) -> Path:
    shutil.copytree(lab_data, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _metrics(root: Path, step: str) -> dict:
    def no_nan(token):
        raise AssertionError(f"{step}.json holds {token}: metrics must be valid JSON")
    return json.loads((root / "metrics/mnist" / f"{step}.json").read_text(), parse_constant=no_nan)


DIVERGING = [  # (stage, variant, params, metrics step, checkpoint written)
    ("mnist_train_mlp", None, {"mnist.train.lr": 1e30}, "train_mlp", "mlp.pt"),
    ("mnist_svd_finetune", None, {"mnist.svd.finetune.lr": 1e30}, "svd_finetune", "mlp_svd_finetune.pt"),
    ("mnist_svd_in_loop", None, {"mnist.svd.in_loop.lr": 1e30}, "svd_in_loop", "mlp_svd_in_loop.pt"),
    ("mnist_compress_svd", None, {"mnist.train.lr": 1e30}, "compress_svd", None),  # its baseline diverged
    ("mnist_init_study", "sgd", {"mnist.init_study.sgd.lr": 1e30}, "init_study_sgd", None),
    ("mnist_init_study", "adam", {"mnist.init_study.adam.lr": 1e30}, "init_study_adam", None),
    ("mnist_dropout_study", None, {"mnist.dropout_study.lr": 1e30}, "dropout_study", None),
]


@pytest.mark.parametrize("stage, variant, updates, step, checkpoint", DIVERGING,
                         ids=[f"{d[0]}@{d[1]}" if d[1] else d[0] for d in DIVERGING])
def test_every_training_stage_survives_a_diverging_learning_rate(lab, capsys, stage, variant, updates, step,
                                                                 checkpoint):
    """lr 1e30: the stage ends normally with a warning, the run is recorded, its plots are drawn, and no
    NaN model is saved as good (the checkpoint is marked diverged and refused by the loader).
    Bugs caught: plotting `100 * None` for the diverged epoch, evaluating/saving the NaN model as good,
    an SVD of NaN weights raising, a stage reading the diverged baseline as if it were fine."""
    if stage == "mnist_compress_svd":
        _stage(lab, "mnist_train_mlp", **updates)
    _stage(lab, stage, variant, **updates)  # returns: no SystemExit, no exception
    err = capsys.readouterr().err
    assert "WARNING" in err and "diverged" in err and "Traceback" not in err
    m = _metrics(lab, step)
    if stage == "mnist_compress_svd":
        assert m["baseline_diverged"] is True and m["sweep"] == []
    elif stage == "mnist_init_study":
        runs = [m[n] for n, *_ in mnist.INIT_SETUPS]
        assert [r["state"] for r in runs] == ["diverges"] * 5
        # ReLU nets reach a non-finite loss; saturated sigmoid nets keep a finite loss of ~1e30
        assert m["relu_he"]["diverged"] is True and m["relu_he"]["diverged_at_iteration"] >= 1
    elif stage == "mnist_dropout_study":
        runs = [r for r in m.values() if isinstance(r, dict)]
        assert len(runs) == 4 and [r["state"] for r in runs] == ["diverges"] * 4
        assert m["relu_he_plain"]["diverged"] is True and m["relu_he_plain"]["diverged_at_epoch"] == 1
    else:
        assert m["diverged"] is True and m["diverged_at_epoch"] == 1 and m["test_acc"] is None
    plots = lab / "plots/mnist" / step
    assert [p.suffix for p in sorted(plots.iterdir())] == [".csv", ".png"]
    assert all(p.stat().st_size > 0 for p in plots.iterdir())
    if checkpoint is not None:
        path = lab / "data/models/mnist" / checkpoint
        assert load_torch(path)["diverged"] is True
        with pytest.raises(UserError, match="diverged"):
            load_checkpoint(path)


def test_the_stages_agree_on_a_good_baseline(lab, capsys):
    """The factorized model starts from the sweep's rank-D network; the full-rank sweep is the baseline."""
    _stage(lab, "mnist_compress_svd")
    _stage(lab, "mnist_svd_finetune")
    sweep, ft = _metrics(lab, "compress_svd"), _metrics(lab, "svd_finetune")
    assert [r["rank"] for r in sweep["sweep"]] == [5, "full"]
    assert sweep["sweep"][-1]["test_acc"] == sweep["baseline_test_acc"]
    # the fitted factors: the same ranks and storage, fitted on training images only
    cal = sweep["sweep_calibrated"]
    assert [r["rank"] for r in cal] == [5, "full"]
    assert [r["n_params"] for r in cal] == [r["n_params"] - 5 * d for r, d in zip(sweep["sweep"], (5, 64))]
    assert all(0 <= r["test_acc"] <= 1 for r in cal) and "no test data" in sweep["selection"]
    # the default start is the course's: the plain SVD, the same network as the sweep's at mnist.svd.rank
    assert ft["init"] == "svd" and ft["max_abs_logit_diff_vs_sweep"] < 1e-3 and "calibration" not in ft
    assert ft["test_acc_before"] == sweep["sweep"][0]["test_acc"] == ft["sweep_test_acc_at_rank"]
    assert ft["diverged"] is False and 0 < ft["param_ratio"] < 1
    # lr and dropout chosen on validation images carved from the training set, the best one retrained
    assert "60 validation images carved from the training set" in ft["selection"]
    assert "all 300 training images, final epoch" in ft["selection"] and ft["n_val"] == 60
    scored = [c for c in ft["candidates"] if c["val_acc"] is not None]
    assert len(ft["candidates"]) == 4 and scored
    assert max(scored, key=lambda c: c["val_acc"])["lr"] == ft["lr"]
    assert load_torch(lab / "data/models/mnist/mlp_svd_finetune.pt")["config"]["mlp"]["dropout_hidden"] == \
        ft["dropout_hidden"]
    assert "seconds" not in json.dumps(ft)  # timings live in timings/, not in metrics
    assert json.loads((lab / "timings/mnist/svd_finetune.json").read_text())["train_seconds"] > 0


def test_svd_in_the_loop_keeps_w_on_its_rank_d_projection_unless_told_to_run_the_course_variant(lab):
    """keep_projected (the default): the saved W1…W5 are their rank-D part plus the last step, so the final
    SVD cuts off next to nothing; false (the course's): W keeps the baseline's full-rank tail."""
    rank, tails, loops = 5, {}, {}
    for keep in (True, False):
        _stage(lab, "mnist_svd_in_loop", **{"mnist.svd.in_loop.keep_projected": keep})
        loops[keep] = _metrics(lab, "svd_in_loop")
        weights = load_torch(lab / "data/models/mnist/mlp_svd_in_loop.pt")["state_dict"]
        tails[keep] = [float((s := torch.linalg.svdvals(w))[rank] / s[0])
                       for k, w in weights.items() if k.endswith("weight")][:5]
    assert loops[True]["keep_projected"] is True and loops[False]["keep_projected"] is False
    assert all(t < 0.1 * c for t, c in zip(tails[True], tails[False])), tails
    assert min(tails[False]) > 0.1
    assert len(loops[True]["candidates"]) == 4 and "validation images" in loops[True]["selection"]


def test_the_calibrated_init_starts_from_the_calibrated_sweep_network(lab):
    _stage(lab, "mnist_compress_svd")
    _stage(lab, "mnist_svd_finetune", **{"mnist.svd.finetune.init": "calibrated"})
    sweep, ft = _metrics(lab, "compress_svd"), _metrics(lab, "svd_finetune")
    # the same network up to float32 rounding of U (Vᵀ x) against (U Vᵀ) x, and the same predictions
    assert ft["init"] == "calibrated" and ft["max_rel_logit_diff_vs_sweep"] < 1e-3, ft["max_rel_logit_diff_vs_sweep"]
    assert ft["test_acc_before"] == sweep["sweep_calibrated"][0]["test_acc"] == ft["sweep_test_acc_at_rank"]
    assert ft["calibration"] == sweep["calibration"] and sweep["calibration"]["refit_uncompressed"] is True


@pytest.mark.parametrize("stage, updates, message", [
    ("mnist_train_mlp", {"mnist.train.lr": 0}, "'mnist.train.lr' must be > 0"),
    ("mnist_svd_finetune", {"mnist.svd.finetune.init": "random"}, "'mnist.svd.finetune.init' must be one of svd"),
    ("mnist_svd_finetune", {"mnist.svd.rank": 5000},
     "'mnist.svd.rank' is 5000, above min(m, n) of the matrices it compresses (W1 64x784, W2 64x64, W3 64x64, "
     "W4 64x64, W5 64x64); the largest valid rank is 64"),
    ("mnist_svd_in_loop", {"mnist.svd.rank": 65}, "the largest valid rank is 64"),
    ("mnist_compress_svd", {"mnist.svd.ranks": [5, 5000]}, "'mnist.svd.ranks' is 5000"),
])
def test_meaningless_params_are_refused_in_one_line_before_anything_is_written(lab, capsys, stage, updates,
                                                                               message):
    with pytest.raises(SystemExit) as exit_:
        _stage(lab, stage, **updates)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: params.yaml: ") and message in err[-1], err
    assert not (lab / "metrics").exists() and not (lab / "plots").exists()


def _stages_reading(key: str) -> set[str]:
    """dvc.yaml stages whose params list the key or a group holding it (DVC re-runs exactly those)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = set()
    for name, st in stages.items():
        for entry in st.get("do", st).get("params", []):
            listed = entry if isinstance(entry, str) else next(iter(entry))
            if key == listed or key.startswith(listed + "."):
                out.add(name)
    return out


def test_the_svd_rank_reaches_exactly_the_two_stages_that_use_it():
    """`dvc exp run -S mnist.svd.rank=…` (the README's experiment) re-runs the fine-tune and SVD in the loop,
    not the sweep (its ranks are mnist.svd.ranks). The DVC run itself is in tests/stages/test_mnist_e2e.py."""
    assert _stages_reading("mnist.svd.rank") == {"mnist_svd_finetune", "mnist_svd_in_loop"}
    assert _stages_reading("mnist.svd.ranks") == {"mnist_compress_svd"}
    assert _stages_reading("mnist.svd.compress.n_compressed") == {
        "mnist_compress_svd", "mnist_svd_finetune", "mnist_svd_in_loop"}
