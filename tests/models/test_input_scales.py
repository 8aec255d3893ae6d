"""Each model family reads its inputs on one scale on every path (training, evaluation, a reloaded model).

The class of bug: a normalisation applied on one path and not the other (the frame denoisers once
divided by their magnitude scale twice in training and once at inference).
"""

import numpy as np
import pytest
import torch

from dlsys.data.safe_pickle import dump_pickle
from dlsys.data.sevens import read_sevens_pickle
from dlsys.models.gan import Generator, to_tanh_range, to_unit_range
from dlsys.models.mlp import MLP, MLPConfig
from dlsys.models.siamese import Siamese, SpeakerEncoder
from dlsys.models.vae import reconstruction_bce


# ---------------------------------------------------------------- speaker verification

def test_speaker_normalisation_travels_with_the_weights():
    """Statistics fitted on the training magnitudes (any level) are part of the checkpoint."""
    torch.manual_seed(0)
    mags = 30.0 * torch.rand(6, 17, 9) * torch.logspace(-3, 0, 17)[None, :, None]
    enc = SpeakerEncoder(n_bins=17, hidden=8, embedding=4)
    enc.set_normalisation(mags)
    fresh = SpeakerEncoder(n_bins=17, hidden=8, embedding=4)
    with torch.no_grad():
        assert not torch.allclose(fresh(mags), enc(mags))  # different weights and statistics
        fresh.load_state_dict(enc.state_dict())
        torch.testing.assert_close(fresh(mags), enc(mags))
        # training scores pairs through score_pairs, evaluation encodes every utterance: same logits
        model = Siamese(enc).eval()
        first, second = torch.tensor([0, 1, 2, 5]), torch.tensor([3, 4, 0, 5])
        emb = enc(mags)
        torch.testing.assert_close(model.score_pairs(mags, first, second), (emb[first] * emb[second]).sum(1))
    # the standardised GRU input of the training data is unit-scale per bin at this level
    z = (torch.log1p(mags).transpose(1, 2).reshape(-1, 17) - enc.mean) / enc.std
    assert torch.allclose(z.mean(0), torch.zeros(17), atol=1e-5) and torch.allclose(z.std(0), torch.ones(17), atol=1e-4)


# ---------------------------------------------------------------- MNIST classifier (the GAN's judge)

def test_mlp_owns_its_normalisation_and_reads_unit_pixels():
    torch.manual_seed(0)
    cfg = MLPConfig(hidden=[16, 16])
    model = MLP(cfg).eval()
    x01 = torch.rand(5, 784)
    reloaded = MLP(cfg).eval()
    reloaded.load_state_dict(model.state_dict())  # the normalisation is rebuilt from the config
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x01), model(x01))
        h = (x01 - model.mean) / model.std  # what every caller relies on: pixels in [0, 1] in, normalised inside
        for i, layer in enumerate(model.layers):
            h = layer(h) if i == len(model.layers) - 1 else model.act(layer(h))
        torch.testing.assert_close(model(x01), h)
        assert not torch.allclose(model(255 * x01), h)  # 0..255 pixels would be a different input
    assert 0.05 < float(model.mean) < 0.5 and 0.1 < float(model.std) < 1.0  # [0, 1] pixel statistics


# ---------------------------------------------------------------- GAN pixel scales

def test_gan_pixels_tanh_for_training_unit_for_the_classifier():
    x01 = torch.rand(64, 784)
    x01[0, :2] = torch.tensor([0.0, 1.0])
    xt = to_tanh_range(x01)
    assert float(xt.min()) == -1.0 and float(xt.max()) == 1.0  # the generator's tanh range, end to end
    torch.testing.assert_close(to_unit_range(xt), x01)
    torch.manual_seed(0)
    G = Generator(noise_dim=5, cond_dim=10, hidden=[8])
    with torch.no_grad():
        g = G(torch.randn(32, 5) * 100, torch.eye(10)[torch.arange(32) % 10])  # saturated: at the range's edges
    u = to_unit_range(g)
    assert float(g.min()) >= -1 and float(g.max()) <= 1 and float(u.min()) >= 0 and float(u.max()) <= 1
    assert float(u.max()) > 0.99 and float(u.min()) < 0.01


# ---------------------------------------------------------------- VAE pixel scale

@pytest.mark.parametrize("stored", ["uint8_0_255", "float_0_1", "float_0_255"])
def test_sevens_reach_the_vae_in_unit_range_however_they_are_stored(tmp_path, stored):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(4, 28, 28)).astype(np.uint8)
    grey[0, 0, 0], grey[0, 0, 1] = 0, 255
    arr = {"uint8_0_255": grey, "float_0_1": grey.astype(np.float32) / 255,
           "float_0_255": grey.astype(np.float32)}[stored]
    dump_pickle(arr, tmp_path / "tr7.pkl")
    x = read_sevens_pickle(tmp_path / "tr7.pkl")
    np.testing.assert_allclose(x, grey.astype(np.float32) / 255, atol=1e-6)
    # the VAE's BCE is minimised where the decoded pixels equal these [0, 1] targets
    t = torch.from_numpy(x).flatten(1).clamp(1e-4, 1 - 1e-4)
    logits = torch.logit(t)
    best = reconstruction_bce(logits, t).sum()
    for shift in (-0.5, 0.5):
        assert reconstruction_bce(logits + shift, t).sum() > best
