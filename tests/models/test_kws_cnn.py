import torch

from dlsys.models.kws_cnn import KwsCNN, class_weights


def test_architecture_filters_and_output_shape():
    model = KwsCNN(n_classes=12, n_mels=40).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [12, 24, 48, 48, 48]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 5
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 3
    # 40 mel bands pooled three times: 40 -> 20 -> 10 -> 5; time is max-pooled away.
    assert model.out.in_features == 48 * 5
    assert model(torch.randn(3, 40, 98)).shape == (3, 12)


def test_final_pool_is_over_time_only():
    model = KwsCNN(n_classes=4, n_mels=40).eval()
    # Different lengths give the same output size: time is pooled to one value.
    assert model(torch.randn(2, 40, 50)).shape == model(torch.randn(2, 40, 120)).shape


def test_class_weights_are_inverse_frequency_with_mean_one():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    w = class_weights(labels, 3)
    assert torch.allclose(w.mean(), torch.tensor(1.0))
    # weight × count is the same for every class: each class contributes equally to the loss.
    counts = torch.tensor([60.0, 30.0, 10.0])
    contrib = w * counts
    assert torch.allclose(contrib, contrib[0].expand(3))
    assert w[2] > w[1] > w[0]


def test_class_weights_leave_absent_classes_at_zero():
    w = class_weights(torch.tensor([0, 0, 2]), 3)
    assert w[1] == 0 and w[0] > 0 and w[2] > 0
