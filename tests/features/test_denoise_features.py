from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dlsys.core.errors import DataFormatError
from dlsys.features.denoise_features import (InputTransform, PairFeatures, SplitFeatures, bin_weights, chunk_frames,
                                             pad_frames, pair_features, remix_magnitudes, split_waves,
                                             timit_split_features)
from dlsys.features.stft import n_frames, stft


def _sig(n, seed):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_timit_split_features_masks_and_layout():
    lens = [5000, 9000, 3000]
    s = [_sig(n, i) for i, n in enumerate(lens)]
    nz = [_sig(n, 10 + i) for i, n in enumerate(lens)]
    x = [a + b for a, b in zip(s, nz)]
    f = timit_split_features(x, s, nz, ["a", "b", "c"], 1024, 512, device="cpu", batch_size=2, keep_waves=True)
    assert f.frames.tolist() == [n_frames(n, 512) for n in lens]
    assert f.mag_x.shape == (sum(f.frames), 513) and f.ibm.dtype == torch.bool
    second = slice(int(f.frames[0]), int(f.frames[:2].sum()))
    S, N = stft(torch.from_numpy(s[1]), 1024, 512).abs().T, stft(torch.from_numpy(nz[1]), 1024, 512).abs().T
    assert torch.allclose(f.mag_s[second], S, atol=1e-5)
    assert torch.allclose(f.mag_n[second], N, atol=1e-5)
    assert torch.equal(f.ibm, f.mag_s > f.mag_n)
    padded = pad_frames(f.mag_x, f.frames)
    assert padded.shape == (3, max(f.frames), 513) and float(padded[2, int(f.frames[2]):].abs().sum()) == 0
    waves = split_waves(f.clean_wave, f.lengths)
    assert torch.equal(waves[1], torch.from_numpy(s[1]))


def test_mismatched_lengths_name_the_file():
    with pytest.raises(DataFormatError, match="trx0001"):
        timit_split_features([_sig(100, 0), _sig(200, 1)], [_sig(100, 0), _sig(150, 1)], [_sig(100, 0), _sig(200, 1)],
                             ["trx0000", "trx0001"], 64, 32, device="cpu")
    d = SimpleNamespace(train_clean=_sig(100, 0), train_dirty=_sig(90, 1), test_01_x=_sig(10, 2),
                        test_01_s=_sig(10, 3), test_02_x=_sig(10, 4), sr=16000)
    with pytest.raises(DataFormatError, match="train"):
        pair_features(d, 64, 32, "cpu")


def test_denoise_features_noise_is_dirty_minus_clean():
    c, n = _sig(4000, 0), _sig(4000, 1)
    d = SimpleNamespace(train_clean=c, train_dirty=c + n, test_01_x=_sig(3000, 2) + c[:3000],
                        test_01_s=c[:3000], test_02_x=_sig(2000, 4), sr=16000)
    f = pair_features(d, 256, 128, "cpu")
    assert torch.allclose(f.train_mag_n, stft(torch.from_numpy(n), 256, 128).abs().T, atol=1e-5)
    assert f.test_01.mix.shape == (n_frames(3000, 128), 129) and f.test_01.mix.is_complex()


def test_chunks_and_transform():
    flat = torch.arange(10.0)[:, None].repeat(1, 2)
    pieces, lengths = chunk_frames(flat, torch.tensor([7, 3]), 3)
    assert lengths.tolist() == [3, 3, 1, 3]
    assert torch.equal(torch.cat(pieces), flat)
    assert chunk_frames(flat, torch.tensor([7, 3]), 0)[1].tolist() == [7, 3]
    mag = torch.rand(50, 4) * 10
    tf = InputTransform.fit(mag, "log", 1e-4)
    z = tf(mag)
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=1e-5) and torch.allclose(z.std(0), torch.ones(4), atol=1e-4)


def _pair_data(n_train=8000, n_test=3000, with_ref=True, gain=1.0):
    c, n = _sig(n_train, 0), _sig(n_train, 1)
    t_s, t_n = _sig(n_test, 2), _sig(n_test, 3)
    return SimpleNamespace(train_clean=gain * c, train_dirty=gain * (c + n), test_01_x=gain * (t_s + t_n),
                           test_01_s=gain * t_s if with_ref else None, test_02_x=gain * _sig(2000, 4), sr=1000)


def test_the_validation_tail_is_cut_off_before_the_transform():
    d = _pair_data()
    f = pair_features(d, 256, 128, "cpu", val_seconds=2.0)  # sr 1000: the last 2000 samples
    head_x = torch.from_numpy(d.train_dirty[:6000])
    assert f.val_seconds == 2.0
    assert torch.allclose(f.train_mag_x, stft(head_x, 256, 128).abs().T, atol=1e-6)  # no tail sample inside
    assert torch.equal(f.val.noisy, torch.from_numpy(d.train_dirty[6000:]))
    assert torch.equal(f.val.clean, torch.from_numpy(d.train_clean[6000:]))
    assert torch.allclose(f.val.mix, stft(f.val.noisy, 256, 128).T, atol=1e-6)
    assert torch.equal(f.test_01.clean, torch.from_numpy(d.test_01_s))


@pytest.mark.parametrize("val_seconds", [2.0, 0.0])
def test_the_test_tail_is_the_pair_s_end_and_the_validation_tail_precedes_it(val_seconds):
    """[train | val | pair_test]: each piece transformed alone, so no frame mixes samples of two pieces."""
    d = _pair_data(n_train=9000)
    f = pair_features(d, 256, 128, "cpu", val_seconds=val_seconds, test_seconds=1.5)  # sr 1000
    n_tr = 9000 - 1500 - int(val_seconds * 1000)
    assert f.test_seconds == 1.5 and f.val_seconds == val_seconds
    assert torch.equal(f.pair_test.noisy, torch.from_numpy(d.train_dirty[7500:]))
    assert torch.equal(f.pair_test.clean, torch.from_numpy(d.train_clean[7500:]))
    assert torch.allclose(f.pair_test.mix, stft(f.pair_test.noisy, 256, 128).T, atol=1e-6)
    assert torch.allclose(f.train_mag_x, stft(torch.from_numpy(d.train_dirty[:n_tr]), 256, 128).abs().T, atol=1e-6)
    assert torch.allclose(f.train_mag_s, stft(torch.from_numpy(d.train_clean[:n_tr]), 256, 128).abs().T, atol=1e-6)
    if val_seconds:
        assert torch.equal(f.val.noisy, torch.from_numpy(d.train_dirty[n_tr:7500]))
        assert torch.equal(f.val.clean, torch.from_numpy(d.train_clean[n_tr:7500]))
    else:
        assert f.val is None
    assert torch.equal(f.test_01.clean, torch.from_numpy(d.test_01_s))  # the course's test is kept beside it


@pytest.mark.parametrize("val_seconds, test_seconds, match", [(4.0, 3.9, "leave fewer"),
                                                               (2.0, 0.1, "test tail of 0.1 s is shorter"),
                                                               (0.1, 2.0, "validation tail of 0.1 s is shorter")])
def test_test_tails_that_leave_nothing_or_hold_no_frame_are_user_errors(val_seconds, test_seconds, match):
    from dlsys.core.errors import UserError
    with pytest.raises(UserError, match=match):
        pair_features(_pair_data(), 256, 128, "cpu", val_seconds=val_seconds, test_seconds=test_seconds)


def test_no_tail_and_no_test_reference():
    f = pair_features(_pair_data(with_ref=False), 256, 128, "cpu", val_seconds=0.0)
    assert f.val is None and f.pair_test is None and f.test_seconds == 0.0 and f.test_01.clean is None
    assert f.train_mag_x.shape[0] == n_frames(8000, 128) and f.test_01.mix.shape[0] == n_frames(3000, 128)


def test_a_tail_that_leaves_nothing_to_train_on_is_a_user_error():
    from dlsys.core.errors import UserError
    with pytest.raises(UserError, match="val|validation"):
        pair_features(_pair_data(), 256, 128, "cpu", val_seconds=7.9)


@pytest.mark.parametrize("kind", ["log", "linear"])
def test_input_transform_ignores_the_overall_gain(kind):
    """The log floor is relative to the training level: the same audio at any gain gives the same input."""
    mag = torch.rand(200, 6) * torch.logspace(-4, 0, 6)  # bins from very quiet to loud
    z = InputTransform.fit(mag, kind, 1e-4)(mag)
    for c in (1e-3, 40.0):
        zc = InputTransform.fit(mag * c, kind, 1e-4)(mag * c)
        assert torch.allclose(zc, z, atol=1e-4), c


def test_features_survive_storage_as_plain_tensors(tmp_path):
    """to_dict → save_torch → load_torch (weights_only) → from_dict gives back the same features."""
    from dlsys.core.outputs import load_torch, save_torch

    f = pair_features(_pair_data(with_ref=False), 256, 128, "cpu", val_seconds=2.0, test_seconds=1.0)
    save_torch(f.to_dict(), tmp_path / "pair.pt")
    g = PairFeatures.from_dict(load_torch(tmp_path / "pair.pt"))
    assert g.test_01.clean is None and g.val_seconds == 2.0 and g.test_seconds == 1.0 and g.n_bins == 129
    assert torch.equal(g.val.mix, f.val.mix) and torch.equal(g.train_mag_s, f.train_mag_s)
    assert torch.equal(g.pair_test.clean, f.pair_test.clean) and torch.equal(g.pair_test.mix, f.pair_test.mix)
    s = timit_split_features([_sig(3000, 0)], None, None, ["te0"], 256, 128, "cpu")
    save_torch(s.to_dict(), tmp_path / "te.pt")
    back = SplitFeatures.from_dict(load_torch(tmp_path / "te.pt"))
    assert back.names == ["te0"] and back.ibm is None and torch.equal(back.mix, s.mix)
    with pytest.raises(DataFormatError, match="missing val"):
        PairFeatures.from_dict({k: v for k, v in f.to_dict().items() if k != "val"}, "old features")


def test_bin_weights_by_name_have_mean_one():
    mag = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.5, 1.5]])
    assert bin_weights(mag, "uniform") is None
    for kind, raw in (("magnitude", mag), ("power", mag ** 2)):
        w = bin_weights(mag, kind)
        assert w.shape == mag.shape and w.dtype == mag.dtype
        assert torch.allclose(w, raw / raw.mean()) and float(w.mean()) == pytest.approx(1.0)
    # the scale of the audio does not change the weights
    assert torch.allclose(bin_weights(1e-3 * mag, "power"), bin_weights(mag, "power"))
    assert float(bin_weights(mag, "power")[1, 0]) > float(bin_weights(mag, "magnitude")[1, 0])  # the loudest bin


@pytest.mark.parametrize("mag, kind, match", [(torch.ones(2, 3), "energy", "unknown loss weight 'energy'"),
                                              (torch.zeros(2, 3), "magnitude", "every magnitude is zero"),
                                              (torch.zeros(0, 3), "power", "no frames")])
def test_bin_weights_refuse_unknown_names_and_silence(mag, kind, match):
    with pytest.raises(ValueError, match=match):
        bin_weights(mag, kind)


def _sources(frames, bins=5, seed=0, noise_levels=None):
    """Random |S| and |N| for files of `frames` frames; file i's noise scaled by noise_levels[i] (default 1)."""
    g = torch.Generator().manual_seed(seed)
    n = int(sum(frames))
    mag_s, mag_n = torch.rand(n, bins, generator=g) + 0.1, torch.rand(n, bins, generator=g) + 0.1
    if noise_levels is not None:
        mag_n = mag_n * torch.repeat_interleave(torch.tensor(noise_levels, dtype=torch.float32),
                                                torch.tensor(frames))[:, None]
    return mag_s, mag_n, torch.tensor(frames)


def _windows(rows: torch.Tensor, frames: torch.Tensor, length: int) -> list[tuple[int, int, torch.Tensor]]:
    """Every (file, start) circular window of `length` frames over the files' rows."""
    out, start = [], 0
    for j, t in enumerate(frames.tolist()):
        f = rows[start: start + t]
        out += [(j, o, f[(o + torch.arange(length)) % t]) for o in range(t)]
        start += t
    return out


def _partner_windows(x: torch.Tensor, mag_n: torch.Tensor, frames: torch.Tensor) -> list[tuple[int, int]]:
    """For a silent-speech remix x: the (partner file, first frame) whose noise window each file's x is, up to
    its gain; asserts that exactly one window fits."""
    got, start = [], 0
    for i, t in enumerate(frames.tolist()):
        xi = x[start: start + t]
        match = [(j, o) for j, o, w in _windows(mag_n, frames, t) if torch.allclose(xi / xi[0, 0], w / w[0, 0],
                                                                                    rtol=1e-4)]
        assert len(match) == 1, (i, match)
        got.append(match[0])
        start += t
    return got


def test_remix_reads_each_file_s_noise_from_a_partner_file_at_a_random_offset_and_keeps_its_snr():
    """With silent speech the remix is the scaled new noise itself: for every file it is a circular window of
    one partner file's noise frames, the partners a permutation of the files, each file's noise energy (so its
    SNR) kept, every start frame of every partner drawn over many epochs, and the whole draw a function of the
    generator's seed."""
    mag_s, mag_n, frames = _sources([6, 9, 4, 7], noise_levels=[1.0, 3.0, 0.3, 2.0])
    silent = torch.zeros_like(mag_s)
    seen = set()
    for seed in range(200):
        x, ibm = remix_magnitudes(silent, mag_n, frames, torch.Generator().manual_seed(seed))
        assert x.shape == mag_s.shape and not bool(ibm.any())  # silent speech never wins a bin
        start = 0
        for t in frames.tolist():
            assert float(x[start: start + t].square().sum()) == pytest.approx(
                float(mag_n[start: start + t].square().sum()), rel=1e-5)
            start += t
        pairs = _partner_windows(x, mag_n, frames) if seed < 40 or len(seen) < 26 else []
        assert not pairs or sorted(j for j, _ in pairs) == [0, 1, 2, 3]
        seen.update(pairs)
    assert seen == {(j, o) for j, t in enumerate(frames.tolist()) for o in range(t)}
    again = remix_magnitudes(silent, mag_n, frames, torch.Generator().manual_seed(3))[0]
    assert torch.equal(again, remix_magnitudes(silent, mag_n, frames, torch.Generator().manual_seed(3))[0])


def test_remix_adds_the_sources_with_a_random_phase_and_masks_where_speech_wins():
    """|X|² = |S|² + |N'|² + 2|S||N'|cos θ, θ uniform: each bin lies between ||S| - |N'|| and |S| + |N'|, and the
    powers add on average; the IBM is |S| > |N'| for the scaled remixed noise N' (read off a silent-speech remix;
    the files' noise levels differ, so the scale matters)."""
    mag_s, mag_n, frames = _sources([400, 300, 350], bins=8, seed=1, noise_levels=[1.0, 0.3, 2.5])
    x, ibm = remix_magnitudes(mag_s, mag_n, frames, torch.Generator().manual_seed(0))
    silent = torch.zeros_like(mag_s)
    noise = remix_magnitudes(silent, mag_n, frames, torch.Generator().manual_seed(0))[0]
    assert [j for j, _ in _partner_windows(noise, mag_n, frames)] != [0, 1, 2]  # someone else's noise, rescaled
    assert torch.equal(ibm, (mag_s > noise).float())
    assert bool((x >= (mag_s - noise).abs() - 1e-5).all() and (x <= mag_s + noise + 1e-5).all())
    cos = (x.square() - mag_s.square() - noise.square()) / (2 * mag_s * noise)
    assert abs(float(cos.mean())) < 0.02 and float(cos.square().mean()) == pytest.approx(0.5, abs=0.02)


def test_remix_with_a_silent_partner_keeps_the_file_s_own_noise_and_refuses_mismatched_inputs():
    """A partner window without energy cannot be scaled to the file's SNR: the file keeps its own noise (so its
    energy) instead; a file whose own noise is silent stays noise-free. Nothing is inf or NaN."""
    mag_s, mag_n, frames = _sources([3, 3])
    mag_n[3:] = 0.0
    own = float(mag_n[:3].square().sum())
    silent = torch.zeros_like(mag_s)
    drew_silent = False
    for seed in range(12):
        noise = remix_magnitudes(silent, mag_n, frames, torch.Generator().manual_seed(seed))[0]
        x, _ = remix_magnitudes(mag_s, mag_n, frames, torch.Generator().manual_seed(seed))
        assert bool(torch.isfinite(x).all())
        assert float(noise[:3].square().sum()) == pytest.approx(own, rel=1e-5) and not bool(noise[3:].any())
        assert torch.equal(x[3:], mag_s[3:])
        drew_silent |= torch.equal(noise[:3], mag_n[:3])  # the silent partner: its own noise, unshifted
    assert drew_silent
    with pytest.raises(ValueError, match="do not match"):
        remix_magnitudes(mag_s, mag_n[:-1], frames)
    with pytest.raises(ValueError, match="at least one frame"):
        remix_magnitudes(mag_s, mag_n, torch.tensor([6, 0]))
