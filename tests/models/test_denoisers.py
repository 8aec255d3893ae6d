import pytest
import torch

from dlsys.models.denoisers import (CNN1dDenoiser, FCDenoiser, FrameMaskFC, RNNMaskDenoiser, cnn1d_flat_size,
                                    conv1d_out_len, masked_bce)


@pytest.mark.parametrize("conv,pool", [
    ([[16, 9, 2], [32, 7, 2], [64, 5, 2]], 1),
    ([[8, 3, 1]], 2),
    ([[4, 16, 4], [8, 4, 1]], 1),
    ([[32, 5, 1], [32, 5, 1]], 3),
])
def test_cnn_flat_size_matches_forward(conv, pool):
    model = CNN1dDenoiser(513, conv, pool)
    feats = model.features(torch.zeros(2, 1, 513))
    assert feats.shape[1] == conv[-1][0]
    assert model.flat_size == feats[0].numel() == cnn1d_flat_size(513, conv, pool)
    out = model(torch.randn(2, 513))
    assert out.shape == (2, 513) and (out >= 0).all()


def test_conv_arithmetic_by_hand():
    assert conv1d_out_len(513, 9, 2) == 253
    assert cnn1d_flat_size(513, [[16, 9, 2], [32, 7, 2], [64, 5, 2]], 1) == 64 * 60
    with pytest.raises(ValueError, match="shrinks"):
        cnn1d_flat_size(513, [[8, 400, 1], [8, 200, 1]], 1)


@pytest.mark.parametrize("act", ["relu", "softplus", "sigmoid"])
def test_fc_output_non_negative(act):
    model = FCDenoiser(513, [64, 32], 0.1, act)
    assert (model(torch.randn(16, 513) * 10) >= 0).all()
    with pytest.raises(ValueError):
        FCDenoiser(513, [64], 0.0)


def test_masked_bce_ignores_padded_frames():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 3, generator=gen)
    target = (torch.rand(2, 5, 3, generator=gen) > 0.5).float()
    lengths = torch.tensor([5, 2])
    loss = masked_bce(logits, target, lengths)
    logits2, target2 = logits.clone(), target.clone()
    logits2[1, 2:] = 100.0  # garbage in the padding
    target2[1, 2:] = 0.0
    assert torch.allclose(masked_bce(logits2, target2, lengths), loss)
    valid = torch.cat([logits[0], logits[1, :2]]), torch.cat([target[0], target[1, :2]])
    assert torch.allclose(loss, torch.nn.functional.binary_cross_entropy_with_logits(*valid))
    # and a change inside the valid frames does change it
    logits2[1, 1] += 3.0
    assert not torch.allclose(masked_bce(logits2, target2, lengths), loss)


def test_masked_bce_weights_each_valid_bin():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 3, generator=gen)
    target = (torch.rand(2, 4, 3, generator=gen) > 0.5).float()
    weight = torch.rand(2, 4, 3, generator=gen) * 3
    lengths = torch.tensor([4, 3])
    per_bin = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    valid = [(b, t) for b in range(2) for t in range(int(lengths[b]))]
    by_hand = sum(float((per_bin[b, t] * weight[b, t]).sum()) for b, t in valid) / (len(valid) * 3)
    assert float(masked_bce(logits, target, lengths, weight)) == pytest.approx(by_hand, rel=1e-6)
    assert torch.equal(masked_bce(logits, target, lengths, torch.ones_like(weight)), masked_bce(logits, target, lengths))
    # a bin of weight 0 no longer counts, wherever its logit goes; weight in the padding counts nowhere
    weight[0, 1, 2] = 0.0
    weight[1, 3] = 50.0
    moved = logits.clone()
    moved[0, 1, 2] += 40.0
    moved[1, 3] -= 40.0
    assert torch.allclose(masked_bce(moved, target, lengths, weight), masked_bce(logits, target, lengths, weight))


@pytest.mark.parametrize("cell,bidir", [("gru", True), ("lstm", False)])
def test_rnn_valid_frames_do_not_depend_on_padding(cell, bidir):
    torch.manual_seed(0)
    model = RNNMaskDenoiser(513, cell, hidden=16, layers=2, bidirectional=bidir, dropout=0.0).eval()
    x = torch.randn(1, 7, 513)
    short = model(x, torch.tensor([7]))
    padded = torch.cat([x, 5.0 * torch.randn(1, 4, 513)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 11, 513)])
    out = model(batch, torch.tensor([7, 11]))
    assert out.shape == (2, 11, 513)
    assert torch.allclose(out[0, :7], short[0], atol=1e-5)


@pytest.mark.parametrize("context", [0, 1, 3])
def test_frame_mask_fc_sees_exactly_its_context_and_no_padding(context):
    """Frame t's logits change when frame t±context changes, not when t±(context+1) does; what fills the
    padding never reaches a valid frame (it reads as the zeros beyond a sequence's start)."""
    torch.manual_seed(0)
    model = FrameMaskFC(9, [16, 8], context=context).eval()
    assert model.net[0].in_features == 9 * (2 * context + 1)
    x = torch.randn(1, 12, 9)
    base = model(x, torch.tensor([12]))
    t = 6
    for offset, should_change in ((context, True), (context + 1, False), (-context, True), (-context - 1, False)):
        y = x.clone()
        y[0, t + offset] += 3.0
        changed = not torch.allclose(model(y, torch.tensor([12]))[0, t], base[0, t])
        assert changed == should_change, (offset, context)
    short = model(x[:, :7], torch.tensor([7]))
    padded = torch.cat([torch.cat([x[:, :7], 5.0 * torch.randn(1, 5, 9)], dim=1), torch.randn(1, 12, 9)])
    out = model(padded, torch.tensor([7, 12]))
    assert out.shape == (2, 12, 9) and torch.allclose(out[0, :7], short[0], atol=1e-6)
    zeros_after = model(torch.cat([x[:, :7], torch.zeros(1, 5, 9)], dim=1), torch.tensor([12]))
    assert torch.allclose(out[0, :7], zeros_after[0, :7], atol=1e-6)
