import torch

from dlsys.compression.factorized import (ProjectedLinear, _StraightThroughLinear, count_params,
                                          factorized_model, layer_svds, projected_model, reconstructed_model,
                                          weight_shapes)
from dlsys.compression.svd import truncated_svd
from dlsys.models.mlp import MLP, MLPConfig


def _mlp(hidden=(48, 40, 32), seed=0):
    return MLP(MLPConfig(in_dim=784, hidden=list(hidden)), generator=torch.Generator().manual_seed(seed)).eval()


def test_param_count_baseline_and_hand_computed_ranks():
    shapes = [(1024, 784)] + [(1024, 1024)] * 4 + [(10, 1024)]
    assert count_params(shapes) == 5_012_490
    # D=10: W1 = 1024·10 + 10 + 784·10; W2..W5 = 1024·10 + 10 + 1024·10; biases 5·1024 + 10; W6 = 10·1024
    assert count_params(shapes, 10, 5) == 18_090 + 4 * 20_490 + 5_130 + 10_240
    # full: D = min(m, n) = 784 for W1, 1024 for the others
    assert count_params(shapes, None, 5) == (1024 * 784 + 784 + 784 * 784) + 4 * (2 * 1024 * 1024 + 1024) \
        + 5_130 + 10_240
    # two factors (S absorbed), D=20
    assert count_params(shapes, 20, 5, diagonal=False) == (1024 * 20 + 20 * 784) + 4 * (2 * 1024 * 20) \
        + 5_130 + 10_240


def test_weight_shapes_of_factorized_model():
    m = _mlp()
    f = factorized_model(m, layer_svds(m, 3), 5)
    assert weight_shapes(f) == weight_shapes(m) == [(48, 784), (40, 48), (32, 40), (10, 32)]


def test_full_rank_reconstruction_keeps_the_logits():
    m = _mlp()
    x = torch.rand(16, 784)
    r = reconstructed_model(m, layer_svds(m, 3), None)
    assert torch.allclose(r(x), m(x), atol=1e-4)


def test_factor_initialisation_reproduces_the_sweep_logits():
    m = _mlp()
    svds = layer_svds(m, 3)
    x = torch.rand(32, 784)
    sweep = reconstructed_model(m, svds, 7)(x)
    fact = factorized_model(m, svds, 7)(x)
    assert torch.allclose(fact, sweep, atol=1e-5)
    assert not torch.allclose(sweep, m(x), atol=1e-3)  # rank 7 really changed the network
    trainable = dict(factorized_model(m, svds, 7).named_parameters())
    assert trainable["layers.0.U"].shape == (48, 7) and trainable["layers.0.Vt"].shape == (7, 784)


def test_straight_through_gradient_equals_gradient_wrt_projected_weight():
    g = torch.Generator().manual_seed(1)
    lin = torch.nn.Linear(30, 20)
    x = torch.randn(8, 30, generator=g, requires_grad=True)
    t = torch.randn(8, 20, generator=g)
    svd = truncated_svd(lin.weight, 4)
    A, B = svd.U * svd.S, svd.Vh
    # reference: a dense leaf equal to the projected weight
    Wd = (A @ B).clone().requires_grad_(True)
    bd = lin.bias.detach().clone().requires_grad_(True)
    xd = x.detach().clone().requires_grad_(True)
    ((torch.nn.functional.linear(xd, Wd, bd) - t) ** 2).sum().backward()
    W = lin.weight.detach().clone().requires_grad_(True)
    b = lin.bias.detach().clone().requires_grad_(True)
    out = _StraightThroughLinear.apply(x, W, b, A, B)
    assert torch.allclose(out, torch.nn.functional.linear(x, A @ B, b), atol=1e-5)
    ((out - t) ** 2).sum().backward()
    assert torch.allclose(W.grad, Wd.grad, atol=1e-4)
    assert torch.allclose(b.grad, bd.grad, atol=1e-4)
    assert torch.allclose(x.grad, xd.grad, atol=1e-4)
    # and it is not the gradient of the unprojected layer
    xw = x.detach().clone()
    W2 = lin.weight.detach().clone().requires_grad_(True)
    ((torch.nn.functional.linear(xw, W2, b.detach()) - t) ** 2).sum().backward()
    assert not torch.allclose(W2.grad, Wd.grad, atol=1e-3)


def test_projected_model_trains_full_weights_and_forwards_rank_d():
    m = _mlp()
    p = projected_model(m, 3, rank=5)
    assert all(isinstance(layer, ProjectedLinear) for layer in p.layers[:3])
    x = torch.rand(16, 784)
    ref = reconstructed_model(m, layer_svds(m, 3), 5)(x)
    assert torch.allclose(p(x), ref, atol=1e-4)
    opt = torch.optim.SGD(p.parameters(), lr=0.1)
    w0 = p.layers[0].weight.detach().clone()
    torch.nn.functional.cross_entropy(p(x), torch.zeros(16, dtype=torch.long)).backward()
    opt.step()
    delta = p.layers[0].weight.detach() - w0
    assert torch.linalg.matrix_rank(delta) > 5  # the full W moved, not only its rank-5 part


def _sv_tail(weight: torch.Tensor, rank: int) -> float:
    """σ_{D+1} / σ_1: how much of W lies beyond its best rank-D approximation."""
    s = torch.linalg.svdvals(weight.detach())
    return float(s[rank] / s[0])


def test_keep_projected_puts_the_weight_on_its_rank_d_projection_in_training_forwards_only():
    m = _mlp()
    p = projected_model(m, 3, rank=5, keep_projected=True)
    x = torch.rand(16, 784)
    w0 = [layer.weight.detach().clone() for layer in p.layers[:3]]
    p.eval()(x)
    assert all(torch.equal(layer.weight, w) for layer, w in zip(p.layers[:3], w0))  # evaluation changes nothing
    p.train()(x)
    exact = reconstructed_model(m, layer_svds(m, 3), 5)
    for layer, ref in zip(p.layers[:3], exact.layers[:3]):
        assert torch.linalg.matrix_rank(layer.weight.detach()) == 5
        assert torch.allclose(layer.weight, ref.weight, atol=1e-4)  # W ← the projection its forward used
    assert torch.equal(p.layers[3].weight, m.layers[3].weight)  # the uncompressed layer is left alone


def test_keep_projected_leaves_no_full_rank_tail():
    """After training, W holds only its rank-D part plus the last step with keep_projected, while the
    course's variant keeps the baseline's full-rank tail that the final SVD cuts off. (Both start from
    the same forward, so their first gradients agree: a check that the set-up is the same.)"""
    m = _mlp()
    runs = {}
    for keep in (False, True):
        p = projected_model(m, 3, rank=5, keep_projected=keep).train()
        opt = torch.optim.SGD(p.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(1)
        grads = []
        for _ in range(5):
            x = torch.rand(16, 784, generator=gen)
            y = torch.randint(0, 10, (16,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(p(x), y).backward()
            grads.append(p.layers[0].weight.grad.clone())
            opt.step()
        runs[keep] = (p, grads)
    assert torch.allclose(runs[True][1][0], runs[False][1][0], atol=1e-6)
    kept, course = runs[True][0], runs[False][0]
    for i in range(3):
        assert _sv_tail(kept.layers[i].weight, 5) < 0.1 * _sv_tail(course.layers[i].weight, 5)
        assert _sv_tail(course.layers[i].weight, 5) > 0.1  # the baseline's spectrum is still there
