import math

import torch

from dlsys.training import TensorBatches, fit


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
              epochs=5, evaluate=lambda m: {"val_mse": float(loss_fn(m, (x, y)))}, select="val_mse", mode="min")
    assert log.epochs_run == 5 and not log.diverged
    assert log.rows[-1]["train_loss"] < log.rows[0]["train_loss"] / 5
    assert log.best["val_mse"] == min(r["val_mse"] for r in log.rows)
    assert math.isclose(float(loss_fn(model, (x, y))), log.best["val_mse"], rel_tol=1e-5)


def test_divergence_is_recorded_not_raised():
    x = torch.randn(64, 4) * 100
    y = torch.randn(64)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(1), b[1])  # noqa: E731
    log = fit(model, opt, TensorBatches([x, y], 8), loss_fn, epochs=50)
    assert log.diverged and log.diverged_at is not None and log.epochs_run == log.diverged_at < 50
    assert math.isnan(log.rows[-1]["train_loss"])
