"""The tiny CIFAR CNN: the course's shapes, He init, and the weight transfer for the SSL study.
(Building it from params is the task's: tests/tasks/test_cifar.py.)"""

import math

import pytest
import torch

from dlsys.models.cifar_cnn import CifarCNN, transfer_features


def test_architecture_is_the_courses():
    m = CifarCNN(10)
    assert m.conv1.weight.shape == (10, 3, 5, 5) and m.conv1.stride == (1, 1)
    assert m.conv2.weight.shape == (10, 10, 5, 5)
    assert m.fc1.weight.shape == (20, 250)  # 10 channels × 5 × 5 after two conv+pool
    assert m.head.weight.shape == (10, 20)
    assert m(torch.zeros(4, 3, 32, 32)).shape == (4, 10)
    assert CifarCNN(3)(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_he_initialisation():
    torch.manual_seed(0)
    m = CifarCNN(10, channels=(64, 64), hidden=400)  # wide, so the sample std is close to its target
    for layer in (m.conv1, m.conv2, m.fc1):
        fan_in = layer.weight[0].numel()
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.08)
        assert torch.count_nonzero(layer.bias) == 0


def test_transfer_copies_every_layer_but_the_head():
    torch.manual_seed(0)
    src = CifarCNN(3)
    dst = CifarCNN(10)
    head_before = dst.head.weight.detach().clone()
    copied = transfer_features(src.state_dict(), dst)
    assert sorted(copied) == sorted(k for k in src.state_dict() if not k.startswith("head."))
    for name, t in src.state_dict().items():
        if name.startswith("head."):
            continue
        assert torch.equal(dst.state_dict()[name], t), name
    assert torch.equal(dst.head.weight, head_before)
    assert dst.head.weight.shape == (10, 20)


def test_parameter_groups_have_the_right_learning_rates():
    from dlsys.models.cifar_cnn import transfer_param_groups

    m = CifarCNN(10)
    opt = torch.optim.Adam(transfer_param_groups(m, 1e-5, 1e-3))
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"transferred": 1e-5, "new": 1e-3}
    by_group = {g["name"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert by_group["new"] == {id(m.head.weight), id(m.head.bias)}
    assert by_group["transferred"] == {id(p) for n, p in m.named_parameters() if not n.startswith("head.")}


@pytest.mark.parametrize("layers", [("conv1",), ("conv1", "conv2"), ("conv2", "fc1")])
def test_transfer_of_some_layers_leaves_the_others_fresh_and_fast(layers):
    from dlsys.models.cifar_cnn import transfer_param_groups

    torch.manual_seed(0)
    src, dst = CifarCNN(3), CifarCNN(10)
    before = {k: t.clone() for k, t in dst.state_dict().items()}
    copied = transfer_features(src.state_dict(), dst, layers)
    assert sorted(copied) == sorted(f"{n}.{w}" for n in layers for w in ("weight", "bias"))
    for name, t in dst.state_dict().items():
        expected = src.state_dict()[name] if name.split(".")[0] in layers else before[name]
        assert torch.equal(t, expected), name
    groups = {g["name"]: g for g in transfer_param_groups(dst, 1e-5, 1e-3, layers)}
    named = dict(dst.named_parameters())
    assert {id(p) for p in groups["transferred"]["params"]} == {id(named[c]) for c in copied}
    assert {id(p) for p in groups["new"]["params"]} == {id(p) for n, p in named.items() if n not in copied}
    assert (groups["transferred"]["lr"], groups["new"]["lr"]) == (1e-5, 1e-3)


@pytest.mark.parametrize("layers, message", [(("head",), "unknown layer 'head'"), ((), "one or more"),
                                             (("conv1", "conv1"), "distinct"), (("fc2",), "unknown layer 'fc2'"),
                                             ("fc1", "a list of layer names, not the string 'fc1'")])
def test_transfer_refuses_bad_layer_lists(layers, message):
    with pytest.raises(ValueError, match=message):
        transfer_features(CifarCNN(3).state_dict(), CifarCNN(10), layers)


@pytest.mark.parametrize("dropped", [("fc1.weight", "fc1.bias"), ("fc1.weight",)])
def test_transfer_refuses_pretext_weights_without_the_layer_or_part_of_it(dropped):
    state = {k: t for k, t in CifarCNN(3).state_dict().items() if k not in dropped}
    with pytest.raises(ValueError, match="the pretext weights have no fc1.weight"):
        transfer_features(state, CifarCNN(10), ("conv1", "fc1"))
