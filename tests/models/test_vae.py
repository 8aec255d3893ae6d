import torch
from torch.distributions import Normal, kl_divergence as torch_kl

from dlsys.models.vae import VAE, kl_divergence, reconstruction_bce, reparameterize, traversal_codes, vae_terms


def test_kl_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    expected = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(dim=1)
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    assert torch.allclose(kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_reparameterisation_gradient_reaches_mu_and_logvar():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.4]], requires_grad=True)
    eps = torch.tensor([[1.5, -2.0]])
    z = reparameterize(mu, logvar, eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    # dz/dlogvar = 0.5 * exp(0.5 * logvar) * eps
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_vae_shapes_and_loss_terms():
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden=[32, 16])
    x = (torch.rand(5, 28, 28) > 0.5).float()
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 784) and mu.shape == (5, 3) and logvar.shape == (5, 3)
    bce, kl = vae_terms(model, x)
    assert bce.ndim == 0 and kl.ndim == 0 and bce > 0 and kl >= 0
    # BCE of perfect (very confident) logits is ~0; of zero logits it is 784·log 2.
    assert reconstruction_bce(x.flatten(1) * 40 - 20, x).max() < 1e-3
    torch.testing.assert_close(reconstruction_bce(torch.zeros(5, 784), x), torch.full((5,), 784 * 0.6931472))


def test_traversal_holds_other_coordinates_fixed():
    values = torch.arange(-5.0, 5.25, 0.5)
    codes = traversal_codes(4, 2, values, torch.Generator().manual_seed(1))
    assert codes.shape == (21, 4)
    torch.testing.assert_close(codes[:, 2], values)
    others = codes[:, [0, 1, 3]]
    assert torch.equal(others, others[:1].expand_as(others))
    assert others.abs().sum() > 0  # drawn from N(0, 1), not left at zero
