import torch

from dlsys.models.siamese import Siamese, SpeakerEncoder, pair_logits


def _model():
    torch.manual_seed(0)
    return Siamese(SpeakerEncoder(n_bins=17, hidden=8, embedding=4)).eval()


def test_logit_is_symmetric_inner_product():
    model = _model()
    a, b = torch.rand(3, 17, 6), torch.rand(3, 17, 9)
    with torch.no_grad():
        ab, ba = model(a, b), model(b, a)
        ea, eb = model.encoder(a), model.encoder(b)
    assert torch.allclose(ab, ba)
    assert torch.allclose(ab, (ea * eb).sum(1))
    assert ab.shape == (3,)


def test_score_pairs_matches_direct_forward_and_encodes_each_utterance_once():
    model = _model()
    mags = torch.rand(6, 17, 5)
    first, second = torch.tensor([0, 0, 3, 5]), torch.tensor([1, 4, 0, 5])
    calls = []
    model.encoder.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    with torch.no_grad():
        fast = model.score_pairs(mags, first, second)
    assert calls == [5]  # rows 0, 1, 3, 4, 5
    with torch.no_grad():
        direct = model(mags[first], mags[second])
    assert torch.allclose(fast, direct, atol=1e-6)


def test_normalisation_uses_given_statistics():
    enc = SpeakerEncoder(n_bins=4, hidden=3, embedding=2)
    mags = torch.rand(5, 4, 7) * torch.tensor([1.0, 10, 100, 1000])[None, :, None]
    enc.set_normalisation(mags)
    logm = torch.log1p(mags).transpose(1, 2).reshape(-1, 4)
    assert torch.allclose(enc.mean, logm.mean(0))
    z = (logm - enc.mean) / enc.std
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=1e-5)


def test_pair_logits_is_bilinear():
    ea, eb = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(pair_logits(2 * ea, eb), 2 * pair_logits(ea, eb))
