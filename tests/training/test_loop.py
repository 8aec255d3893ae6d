import math

import pytest
import torch

from dlsys.training import EpochTensors, TensorBatches, fit


def test_batches_cover_every_sample_once_and_are_seeded():
    x = torch.arange(10)
    seen = torch.cat([b[0] for b in TensorBatches([x], 3, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    again = torch.cat([b[0] for b in TensorBatches([x], 3, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(seen, again)
    assert len(TensorBatches([x], 3)) == 4 and len(TensorBatches([x], 3, drop_last=True)) == 3
    ordered = [b[0].tolist() for b in TensorBatches([x], 4, shuffle=False)]
    assert ordered == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_fit_learns_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(1), b[1])  # noqa: E731
    log = fit(model, opt, TensorBatches([x, y], 32, generator=torch.Generator().manual_seed(0)), loss_fn,
              epochs=5, evaluate=lambda m, epoch: {"val_mse": float(loss_fn(m, (x, y)))}, select="val_mse", mode="min")
    assert log.epochs_run == 5 and not log.diverged
    assert log.rows[-1]["train_loss"] < log.rows[0]["train_loss"] / 5
    assert log.best["val_mse"] == min(r["val_mse"] for r in log.rows)
    assert math.isclose(float(loss_fn(model, (x, y)).detach()), log.best["val_mse"], rel_tol=1e-5)


def test_divergence_is_recorded_not_raised():
    x = torch.randn(64, 4) * 100
    y = torch.randn(64)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(1), b[1])  # noqa: E731
    log = fit(model, opt, TensorBatches([x, y], 8), loss_fn, epochs=50)
    assert log.diverged and log.diverged_at is not None and log.epochs_run == log.diverged_at < 50
    assert not math.isfinite(log.rows[-1]["train_loss"])
    assert all(math.isfinite(r["train_loss"]) for r in log.rows[:-1])


def _toy():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -1.0, 2.0])
    model = torch.nn.Linear(3, 1)
    loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(1), b[1])  # noqa: E731
    return x, y, model, loss_fn


def test_best_epoch_state_is_restored_when_validation_gets_worse():
    """The validation score peaks at epoch 2 and then falls: the weights of epoch 2 come back."""
    x, y, model, loss_fn = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scripted = {1: 0.5, 2: 0.9, 3: 0.7, 4: 0.6}
    snapshots = {}

    def evaluate(m, epoch):
        snapshots[epoch] = m.weight.detach().clone()
        return {"val_acc": scripted[epoch]}

    log = fit(model, opt, TensorBatches([x, y], 16), loss_fn, epochs=4, evaluate=evaluate, select="val_acc")
    assert log.best["epoch"] == 2 and log.best["val_acc"] == 0.9
    assert not torch.equal(snapshots[2], snapshots[4])  # training moved on after the best epoch
    assert torch.equal(model.weight.detach(), snapshots[2])
    log = fit(model, opt, TensorBatches([x, y], 16), loss_fn, epochs=4, evaluate=evaluate, select="val_acc",
              restore_best=False)
    assert torch.equal(model.weight.detach(), snapshots[4])


def test_named_loss_terms_are_logged_per_epoch():
    x, y, model, _ = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def loss_fn(m, b):
        mse = torch.nn.functional.mse_loss(m(b[0]).squeeze(1), b[1])
        l2 = 0.1 * m.weight.pow(2).sum()
        return {"loss": mse + l2, "mse": mse, "l2": l2}

    log = fit(model, opt, TensorBatches([x, y], 16), loss_fn, epochs=3)
    for row in log.rows:
        assert set(row) == {"epoch", "train_loss", "train_mse", "train_l2"}
        assert math.isclose(row["train_loss"], row["train_mse"] + row["train_l2"], rel_tol=1e-6)
        assert row["train_l2"] > 0
    assert len(log.epoch_seconds) == 3 and "epoch_seconds" not in log.rows[0]


def test_evaluation_every_n_epochs_gets_the_epoch_and_always_runs_last():
    x, y, model, loss_fn = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = []

    def evaluate(m, epoch):
        calls.append(epoch)
        return {"val_score": float(-epoch)}

    log = fit(model, opt, TensorBatches([x, y], 16), loss_fn, epochs=7, evaluate=evaluate, eval_every=3,
              select="val_score")
    assert calls == [3, 6, 7]
    assert [r["epoch"] for r in log.rows if "val_score" in r] == [3, 6, 7]
    assert log.best["epoch"] == 3  # selection only among evaluated epochs


def test_epoch_tensors_builds_fresh_tensors_once_per_epoch_and_fit_trains_on_them():
    """`make` runs once before each epoch (the first at construction); every epoch's batches cover that epoch's
    rows exactly once; a `make` whose row count changes is refused."""
    calls = []

    def make():
        calls.append(len(calls))
        base = torch.arange(10.0) + 100 * len(calls)
        return [base, base * 2]

    batches = EpochTensors(make, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 3 and calls == [0]
    seen = []
    for _ in range(3):
        rows = [b for b in batches]
        assert all(torch.equal(y, 2 * x) for x, y in rows)
        seen.append(sorted(torch.cat([x for x, _ in rows]).tolist()))
    assert calls == [0, 1, 2]
    assert seen == [[100 * e + i for i in range(10)] for e in (1, 2, 3)]

    model = torch.nn.Linear(1, 1)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.0), batches,
        lambda m, b: (m(b[0][:, None]) - b[1][:, None]).square().mean(), epochs=2)
    assert calls == [0, 1, 2, 3, 4]  # two more epochs, two more builds

    sizes = iter([10, 9])
    shrinking = EpochTensors(lambda: [torch.zeros(next(sizes))], batch_size=4)
    list(shrinking)
    with pytest.raises(ValueError, match="make\\(\\) gave 9 rows, the first epoch 10"):
        list(shrinking)
