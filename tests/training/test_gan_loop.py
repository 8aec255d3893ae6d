import math

import torch

from dlsys.models.gan import Discriminator, Generator, one_hot, wrong_labels
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
                     evaluate=lambda epoch: {"probe": 1.0})
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
    assert hist.diverged and hist.diverged_at == 1 and math.isnan(hist.rows[-1]["g_penalty"])


def _label_coded_images(n=200):
    """Images whose pixels say their label: block k of 70 pixels is bright for label k."""
    y = torch.arange(n) % 10
    x = -torch.ones(n, 784)
    for k in range(10):
        x[y == k, k * 70:(k + 1) * 70] = 1.0
    return x, y


def _label_gap(weight: float) -> tuple[float, list[dict]]:
    """Train a cGAN on label-coded images; return D's mean logit on (real, right label) minus
    (real, wrong label), and the history."""
    torch.manual_seed(0)
    x, y = _label_coded_images(1000)
    G, D = Generator(8, 10, [16]), Discriminator(10, [64, 32], dropout=0.0)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)
    batches = TensorBatches([x, y], 50, generator=gen)
    fake = lambda b: (G(torch.randn(len(b[0]), 8), one_hot(b[1])), one_hot(b[1]), None)  # noqa: E731
    wrong = lambda b: (b[0], one_hot(wrong_labels(b[1], 10, gen)))  # noqa: E731
    # 30 epochs: D's accuracy on mismatched pairs is still climbing through 0.6-0.9 around epoch 20 (where
    # the last point depended on the CPU's rounding); measured 0.99 at epoch 30 and at epoch 40.
    hist = train_gan(G, D, opt_g, opt_d, batches, lambda b: (b[0], one_hot(b[1])), fake, epochs=30,
                     mismatched=wrong, mismatch_weight=weight)
    D.eval()
    with torch.no_grad():
        gap = D(x, one_hot(y)).mean() - D(x, one_hot((y + 3) % 10)).mean()
    return float(gap), hist.rows


def test_matching_aware_discriminator_learns_to_reject_wrong_labels():
    gap_with, rows = _label_gap(1.0)
    gap_without, rows_plain = _label_gap(0.0)
    # Shown reals with wrong labels as fakes, D separates right from wrong labels on the same images;
    # without that term nothing asks it to look at the label once the images themselves are told apart.
    assert gap_with > 2.0 and gap_with > gap_without + 1.0
    assert rows[-1]["d_acc_mismatch"] > 0.9
    assert "d_acc_mismatch" not in rows_plain[-1]
