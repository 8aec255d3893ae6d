"""Data-aware rank-D compression (reduced-rank regression): exact where it should be, never worse than SVD
on the data it is fitted to, and the same storage as the plain factors."""

import torch
from torch import nn

from dlsys.compression.calibrated import calibrated_layers, calibrated_model
from dlsys.compression.svd import truncated_svd


class TinyMLP(nn.Module):
    def __init__(self, dims, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) / layer.weight.shape[1] ** 0.5)
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=g))
        self.act = torch.relu

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x


def _inputs(n=2000, dim=40, active=6, seed=1):
    """Inputs that vary in only `active` directions (like MNIST's never-inked border pixels), plus an offset."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(dim, active, generator=g))[0]
    return torch.randn(n, active, generator=g) @ basis.T + 0.5


def test_full_rank_reproduces_the_dense_network():
    model = TinyMLP([40, 30, 20, 5])
    x = torch.randn(1000, 40, generator=torch.Generator().manual_seed(2))
    low = calibrated_layers(list(model.layers[:2]), x, model.act, None, ridge=1e-9)
    out = calibrated_model(model, low)
    torch.testing.assert_close(out(x), model(x), atol=1e-4, rtol=1e-4)


def test_inputs_in_a_subspace_are_reproduced_at_that_rank_where_plain_svd_is_not():
    model = TinyMLP([40, 30, 5])
    x = _inputs(active=6)
    low = calibrated_layers([model.layers[0]], x, model.act, 6, ridge=1e-9)
    assert low[0].A.shape == (30, 6) and low[0].B.shape == (6, 40)  # D(m + n) numbers, as the SVD's factors
    fitted = calibrated_model(model, low)
    plain = calibrated_model(model, [])
    with torch.no_grad():
        svd = truncated_svd(model.layers[0].weight, 6)
        plain.layers[0].weight.copy_(svd.reconstruct())
    err_fit = (fitted(x) - model(x)).abs().max().item()
    err_svd = (plain(x) - model(x)).abs().max().item()
    assert err_fit < 1e-3 < err_svd


def test_never_worse_than_plain_svd_on_the_calibration_data():
    model = TinyMLP([40, 30, 5], seed=3)
    x = _inputs(active=20, seed=4) + 0.05 * torch.randn(2000, 40, generator=torch.Generator().manual_seed(5))
    target = x @ model.layers[0].weight.T + model.layers[0].bias
    for d in (2, 5, 10):
        low = calibrated_layers([model.layers[0]], x, model.act, d, ridge=1e-9)[0]
        svd_w = truncated_svd(model.layers[0].weight, d).reconstruct()
        err_fit = ((x @ low.weight.T + low.bias) - target).pow(2).mean()
        err_svd = ((x @ svd_w.T + model.layers[0].bias) - target).pow(2).mean()
        assert err_fit <= err_svd * (1 + 1e-6), d


def test_refitting_the_uncompressed_tail_brings_the_outputs_closer_and_keeps_its_shape():
    """The output layer refitted at full rank on the compressed features: least squares, so on the
    calibration data its outputs are at least as close to the dense network's as the original layer's."""
    model = TinyMLP([40, 30, 20, 5], seed=6)
    x = torch.randn(3000, 40, generator=torch.Generator().manual_seed(7))
    hidden_only = calibrated_layers(list(model.layers[:2]), x, model.act, 3, ridge=1e-9)
    with_tail = calibrated_layers(list(model.layers), x, model.act, 3, ridge=1e-9, full_rank_tail=1)
    assert [lo.A.shape[1] for lo in with_tail] == [3, 3, 5]  # the tail keeps its full rank (min(5, 20))
    for a, b in zip(hidden_only, with_tail[:2]):  # the compressed layers are the same fit
        torch.testing.assert_close(a.weight, b.weight)
    assert with_tail[2].weight.shape == model.layers[2].weight.shape
    with torch.no_grad():
        dense = model(x)
        err = {name: (calibrated_model(model, low)(x) - dense).pow(2).mean().item()
               for name, low in (("hidden_only", hidden_only), ("with_tail", with_tail))}
    assert err["with_tail"] < err["hidden_only"], err
    # and it is the least-squares optimum: the residual is orthogonal to the features and the constant
    net = calibrated_model(model, with_tail)
    with torch.no_grad():
        h = x
        for layer in net.layers[:2]:
            h = model.act(layer(h))
        residual = net.layers[2](h) - dense
        feats = torch.cat([h, torch.ones(len(h), 1)], 1)
        assert (feats.T @ residual).abs().max() / len(h) < 1e-4 * residual.abs().max()


def test_the_tail_ridge_reaches_only_the_tail():
    model = TinyMLP([40, 30, 20, 5], seed=6)
    x = torch.randn(3000, 40, generator=torch.Generator().manual_seed(7))
    small = calibrated_layers(list(model.layers), x, model.act, 3, ridge=1e-9, full_rank_tail=1)
    large = calibrated_layers(list(model.layers), x, model.act, 3, ridge=1e-9, full_rank_tail=1, tail_ridge=10.0)
    for a, b in zip(small[:2], large[:2]):
        torch.testing.assert_close(a.weight, b.weight)
    # a ridge of 10× the mean input variance shrinks the least-squares weights
    assert large[2].weight.norm() < 0.5 * small[2].weight.norm()


def test_a_tail_longer_than_the_layers_is_refused():
    model = TinyMLP([40, 30, 5])
    try:
        calibrated_layers(list(model.layers), torch.randn(10, 40), model.act, 3, ridge=1e-9, full_rank_tail=3)
    except ValueError as exc:
        assert "full_rank_tail" in str(exc)
    else:
        raise AssertionError("full_rank_tail 3 of 2 layers was accepted")
