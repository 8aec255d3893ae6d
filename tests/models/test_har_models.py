import torch

from dlsys.models.har import CNN1dHAR, DenseHAR, build, n_params


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
