import torch

import pytest

from dlsys.core.errors import UserError
from dlsys.models.mlp import MLP, MLPConfig, load_mlp, load_mlp_classifier, save_mlp


def test_baseline_shape_and_param_count():
    m = MLP(MLPConfig())
    assert sum(p.numel() for p in m.parameters()) == 5_012_490
    assert len(m.hidden_outputs(torch.rand(3, 784))) == 6


def test_init_schemes_have_the_stated_scale():
    g = torch.Generator().manual_seed(0)
    normal = MLP(MLPConfig(hidden=[512] * 5, init="normal", init_std=0.01), generator=g)
    he = MLP(MLPConfig(hidden=[512] * 5, init="he"), generator=g)
    xavier = MLP(MLPConfig(hidden=[512] * 5, init="xavier"), generator=g)
    w = normal.layers[1].weight.detach()
    assert abs(float(w.std()) - 0.01) < 5e-4
    assert abs(float(he.layers[1].weight.detach().std()) - (2 / 512) ** 0.5) < 2e-3
    assert abs(float(xavier.layers[1].weight.detach().std()) - (2 / 1024) ** 0.5) < 2e-3
    assert float(he.layers[1].bias.detach().abs().max()) == 0.0


def test_saved_classifier_takes_pixels_in_both_shapes(tmp_path):
    m = MLP(MLPConfig(hidden=[64, 32], dropout_hidden=0.5), generator=torch.Generator().manual_seed(0))
    save_mlp(m, tmp_path / "mlp.pt")
    clf = load_mlp_classifier(tmp_path / "mlp.pt")
    assert not clf.training
    x = torch.rand(5, 28, 28)
    out = clf(x)
    assert out.shape == (5, 10)
    assert torch.allclose(out, clf(x.reshape(5, 784)))
    assert torch.allclose(out, m.eval()(x))
    # normalisation is inside: the logits depend on the pixel scale given
    assert not torch.allclose(out, clf(x * 255))


def test_a_diverged_checkpoint_is_refused_in_one_line(tmp_path):
    """No NaN model is ever used as good: the generative family loads the baseline through load_mlp."""
    m = MLP(MLPConfig(hidden=[8]), generator=torch.Generator().manual_seed(0))
    save_mlp(m, tmp_path / "ok.pt")
    save_mlp(m, tmp_path / "bad.pt", extra={"diverged": True, "stage": "mnist_train_mlp"})
    assert load_mlp(tmp_path / "ok.pt").layers[0].weight.shape == (8, 784)
    with pytest.raises(UserError, match="diverged.*mnist_train_mlp"):
        load_mlp_classifier(tmp_path / "bad.pt")
