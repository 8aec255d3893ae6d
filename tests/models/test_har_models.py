import pytest
import torch

from dlsys.models.har import CNN1dHAR, DenseHAR, build, conv1d_gemm, n_params


def test_dense_parameter_count_matches_lecture():
    assert n_params(DenseHAR(length=80, channels=3, n_classes=6)) == 68_606


def test_cnn1d_parameter_count_matches_lecture():
    assert n_params(CNN1dHAR(channels=3, n_classes=6)) == 520_486


def test_both_models_map_windows_to_class_logits():
    x = torch.randn(5, 80, 3)
    for kind in ("dense", "cnn1d"):
        model = build(kind, length=80, channels=3, n_classes=6, dropout=0.5).eval()
        assert model(x).shape == (5, 6)


def test_dense_model_is_applied_per_time_step():
    # Changing one time step changes only that step's hidden units: the first layer sees 3 inputs.
    model = DenseHAR()
    assert model.per_step[0].in_features == 3


def _amplitude_task(n: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class = how strongly every axis oscillates (amplitude 0.5 or 1.5), at a random frequency and phase.

    Every class has mean zero at every time step, so a model that is linear in its input cannot beat
    chance: it has to use its non-linearities (e.g. |x| summed over time).
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    t = torch.arange(length, dtype=torch.float32)
    freq = 0.05 + 0.15 * torch.rand(n, 1, 1, generator=g)
    phase = 2 * torch.pi * torch.rand(n, 1, 3, generator=g)
    amplitude = torch.where(y == 0, 0.5, 1.5)[:, None, None]
    return amplitude * torch.sin(2 * torch.pi * freq * t[None, :, None] + phase), y


@pytest.mark.parametrize("kind", ["dense", "cnn1d"])
def test_both_models_learn_a_problem_no_linear_model_can(kind):
    torch.manual_seed(0)
    length = 80
    x, y = _amplitude_task(512, length, seed=0)
    xt, yt = _amplitude_task(256, length, seed=1)
    model = (DenseHAR(length, 3, 2, hidden=16) if kind == "dense"
             else CNN1dHAR(3, 2, filters=(8, 8, 16, 16), dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        i = torch.randint(0, len(x), (64,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i]), y[i]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert acc > 0.9, f"{kind}: held-out accuracy {acc:.2f} on a two-amplitude problem"


def test_dense_model_changes_one_time_step_only_through_that_step():
    # The per-step layers see one time step: perturbing step 7 changes hidden units of step 7 only.
    torch.manual_seed(0)
    model = DenseHAR(length=20, channels=3, n_classes=6).eval()
    x = torch.randn(1, 20, 3)
    x2 = x.clone()
    x2[0, 7] += 1.0
    with torch.no_grad():
        changed = (model.per_step(x2) - model.per_step(x)).abs().sum(-1)[0] > 0
    assert changed.tolist() == [t == 7 for t in range(20)]


def test_cnn1d_receptive_field_spans_75_samples_through_the_pooling():
    # conv10, conv10 (19) -> max-pool 3 (21, jump 3) -> conv10 (48) -> conv10 (75): the first output step
    # sees samples 0..74 and nothing after.
    assert CNN1dHAR.min_length() == 75
    torch.manual_seed(0)
    model = CNN1dHAR(channels=3, n_classes=6).eval()
    x = torch.randn(1, 80, 3)
    with torch.no_grad():
        base = model.time_features(x)[0, 0]

        def first_step_moves(t: int) -> bool:
            x2 = x.clone()
            x2[0, t] += 5.0
            return not torch.equal(model.time_features(x2)[0, 0], base)

    assert first_step_moves(0) and first_step_moves(74)
    assert not first_step_moves(75) and not first_step_moves(79)
    # A window shorter than the receptive field leaves nothing to pool.
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 74, 3))
    assert model(torch.randn(1, 75, 3)).shape == (1, 6)


@pytest.mark.parametrize("in_c, out_c, k, length", [(3, 100, 10, 80), (100, 160, 10, 21), (4, 5, 1, 7), (2, 3, 7, 7)])
def test_the_gemm_convolution_is_conv1d_forward_and_backward(in_c, out_c, k, length):
    """conv1d_gemm on channels-last input = nn.Conv1d on channels-first, values and every gradient.
    Bugs caught: unfolding into (k, C) order against the weight's (C, k), an off-by-one output length."""
    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv1d(in_c, out_c, k)
    x = torch.randn(6, length, in_c, generator=g, requires_grad=True)
    weight = torch.randn(6, length - k + 1, out_c, generator=g)
    ours = conv1d_gemm(x, conv)
    (ours * weight).sum().backward()
    grads = [t.grad.clone() for t in (x, conv.weight, conv.bias)]
    for t in (x, conv.weight, conv.bias):
        t.grad = None
    ref = conv(x.transpose(1, 2)).transpose(1, 2)
    (ref * weight).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    for ours_g, t in zip(grads, (x, conv.weight, conv.bias)):
        torch.testing.assert_close(ours_g, t.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length", [75, 80, 83])
def test_the_cnn_forward_is_the_lecture_stack_of_conv1d_and_max_pool(length):
    """The GEMM forward computes what `features` (Conv1d, MaxPool1d with its floor) computes."""
    torch.manual_seed(0)
    model = CNN1dHAR(channels=3, n_classes=6).eval()
    x = torch.randn(4, length, 3)
    with torch.no_grad():
        ref = model.out(model.features(x.transpose(1, 2)).mean(dim=2))
        torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)
