import torch

from dlsys.models.ensemble import ProbabilityAverage
from dlsys.models.kws_cnn import KwsCNN, build, class_weights


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


def test_a_keyword_counts_the_same_however_much_silence_surrounds_it():
    # The final pool takes the maximum over time: appending silence (zeros, which stay zero through the
    # bias-free convolutions and fresh batch norm) changes nothing. An average over time would dilute it.
    torch.manual_seed(0)
    model = KwsCNN(n_classes=5, n_mels=16, filters=(4, 8, 8), pooled_blocks=2).eval()
    word = torch.zeros(1, 16, 64)
    word[0, 4:10, 24:32] = torch.randn(6, 8).abs() + 1.0
    longer = torch.cat([word, torch.zeros(1, 16, 192)], dim=2)
    with torch.no_grad():
        assert torch.allclose(model(word), model(longer), atol=1e-6)
        assert not torch.allclose(model(word), model(torch.zeros_like(word)), atol=1e-3)


def test_weighted_loss_has_no_pull_towards_the_majority_class():
    # With inverse-frequency weights, a model that predicts every class equally likely is at the optimum
    # of the weighted cross-entropy for class priors: the gradient with respect to a constant bias is 0.
    labels = torch.tensor([0] * 90 + [1] * 8 + [2] * 2)
    bias = torch.zeros(3, requires_grad=True)
    logits = bias.expand(len(labels), 3)
    torch.nn.functional.cross_entropy(logits, labels, weight=class_weights(labels, 3)).backward()
    assert torch.allclose(bias.grad, torch.zeros(3), atol=1e-6)
    # Unweighted, the same model is pulled towards class 0.
    bias.grad = None
    torch.nn.functional.cross_entropy(bias.expand(len(labels), 3), labels).backward()
    assert bias.grad[0] < -0.5


def test_build_rebuilds_one_cnn_or_an_ensemble_from_a_checkpoint_config():
    member = {"n_classes": 4, "n_mels": 16, "filters": [4, 8], "pooled_blocks": 1, "dropout": 0.2}
    assert type(build(member)) is KwsCNN
    torch.manual_seed(0)
    trained = build({"members": 3, "member": member}).eval()
    assert isinstance(trained, ProbabilityAverage) and len(trained.members) == 3
    # three CNNs, not one shared three times
    assert len({m.out.weight.data_ptr() for m in trained.members}) == 3
    rebuilt = build({"members": 3, "member": member}).eval()
    rebuilt.load_state_dict(trained.state_dict())  # the same keys and shapes: strict load succeeds
    x = torch.randn(2, 16, 20)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), trained(x))
