import math

import torch

from dlsys.models.gan import Discriminator, Generator, one_hot
from dlsys.training import TensorBatches
from dlsys.training.gan import train_gan


def _setup(lr=1e-3):
    torch.manual_seed(0)
    x = torch.rand(64, 784) * 2 - 1
    y = torch.arange(64) % 10
    G, D = Generator(8, 10, [16]), Discriminator(10, [16], dropout=0.0)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr), torch.optim.Adam(D.parameters(), lr)
    batches = TensorBatches([x, y], 16, generator=torch.Generator().manual_seed(0))
    fake = lambda b: (G(torch.randn(len(b[0]), 8), one_hot(b[1])), one_hot(b[1]), None)  # noqa: E731
    return G, D, opt_g, opt_d, batches, fake


def test_train_gan_records_accuracies_and_updates_both_nets():
    G, D, opt_g, opt_d, batches, fake = _setup()
    g0 = [p.clone() for p in G.parameters()]
    d0 = [p.clone() for p in D.parameters()]
    hist = train_gan(G, D, opt_g, opt_d, batches, lambda b: (b[0], one_hot(b[1])), fake, epochs=3,
                     evaluate=lambda: {"probe": 1.0})
    assert hist.epochs_run == 3 and not hist.diverged
    for row in hist.rows:
        assert 0 <= row["d_acc_real"] <= 1 and 0 <= row["d_acc_fake"] <= 1 and row["probe"] == 1.0
        assert row["g_penalty"] == 0.0
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))


def test_train_gan_records_divergence_instead_of_raising():
    G, D, opt_g, opt_d, batches, fake = _setup()
    nan_penalty = lambda b: (*fake(b)[:2], torch.tensor(float("nan")))  # noqa: E731
    hist = train_gan(G, D, opt_g, opt_d, batches, lambda b: (b[0], one_hot(b[1])), nan_penalty, epochs=3)
    assert hist.diverged and hist.diverged_at == 1 and math.isnan(hist.rows[-1]["g_loss"])
