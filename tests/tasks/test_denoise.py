"""The denoise task module: frame denoisers' level invariance and output level, selection on the training
tail only, the RNN's level invariance, and every training stage run in-process (no DVC) on tiny data
written here, including a diverging learning rate and a dataset without test_01's clean reference."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from dlsys.core.context import load_checkpoint, stage_main
from dlsys.core.errors import UserError
from dlsys.core.outputs import load_torch
from dlsys.core.overlay import apply_dotted
from dlsys.core.params import Params, read_yaml
from dlsys.data.registry import acquire
from dlsys.data.wav import read_wav
from dlsys.evaluation.snr import snr_report
from dlsys.features.denoise_features import pair_features, timit_split_features
from dlsys.models.denoisers import CNN1dDenoiser, FCDenoiser, FrameMaskFC, RNNMaskDenoiser
from dlsys.tasks import denoise

ROOT = Path(__file__).resolve().parents[2]
SR, N_FFT, HOP = 8000, 128, 64


def _repo_params() -> dict:
    return read_yaml((ROOT / "params.yaml").read_text())


# ------------------------------------------------------------------------------------------- recipes

def test_recipes_read_the_denoise_group():
    p = Params(_repo_params())
    fc, cnn = denoise.FrameRecipe.from_params(p, "fc"), denoise.FrameRecipe.from_params(p, "cnn1d")
    assert fc.hidden == tuple(p.list("denoise.fc.hidden")) and fc.conv == ()
    assert cnn.conv == tuple(tuple(c) for c in p.raw("denoise.cnn1d.conv")) and cnn.hidden == ()
    assert isinstance(denoise.build_frame_model(fc.config(513)), FCDenoiser)
    assert isinstance(denoise.build_frame_model(cnn.config(513)), CNN1dDenoiser)
    rnn = denoise.RnnRecipe.from_params(p)
    assert rnn.training.epochs == p.int("denoise.rnn.epochs")
    assert rnn.training.loss_weight == p.raw("denoise.rnn.loss_weight")
    assert rnn.training.remix is p.raw("denoise.rnn.remix")
    assert isinstance(denoise.build_mask_model(rnn.config(513)), RNNMaskDenoiser)
    mask_fc = denoise.MaskFCRecipe.from_params(p)
    assert mask_fc.hidden == tuple(p.list("denoise.mask_fc.hidden")) and mask_fc.context == p.int("denoise.mask_fc.context")
    assert mask_fc.training.loss_weight == p.raw("denoise.mask_fc.loss_weight")
    assert mask_fc.training.remix is p.raw("denoise.mask_fc.remix")
    built = denoise.build_mask_model(mask_fc.config(513))
    assert isinstance(built, FrameMaskFC) and built.net[0].in_features == 513 * (2 * mask_fc.context + 1)
    sp = denoise.Spectral.from_params(p)
    assert (sp.n_fft, sp.hop) == (p.int("denoise.stft.n_fft"), p.int("denoise.stft.hop"))
    assert fc.inputs == rnn.training.inputs == mask_fc.training.inputs == denoise.ModelInput(p.raw("denoise.input"),
                                                                           p.float("denoise.log_floor"))
    assert fc.divergence_multiple == rnn.training.divergence_multiple == mask_fc.training.divergence_multiple \
        == p.float("denoise.divergence_multiple")


@pytest.mark.parametrize("updates, message", [
    ({"denoise.fc.lr": 0}, "'denoise.fc.lr' must be > 0"),
    ({"denoise.cnn1d.conv": [[4, 9]]}, "denoise.cnn1d.conv"),
])
def test_recipes_refuse_meaningless_values(updates, message):
    kind = "cnn1d" if "cnn1d" in next(iter(updates)) else "fc"
    with pytest.raises(UserError, match=message):
        denoise.FrameRecipe.from_params(Params(apply_dotted(_repo_params(), updates)), kind)


@pytest.mark.parametrize("recipe", [denoise.RnnRecipe, denoise.MaskFCRecipe])
def test_mask_recipes_refuse_an_unknown_loss_weight(recipe):
    group = "denoise.rnn" if recipe is denoise.RnnRecipe else "denoise.mask_fc"
    with pytest.raises(UserError, match=f"'{group}.loss_weight'.*uniform"):
        recipe.from_params(Params(apply_dotted(_repo_params(), {f"{group}.loss_weight": "energy"})))


def test_a_conv_stack_that_shrinks_the_bins_to_nothing_is_a_user_error():
    r = denoise.FrameRecipe.from_params(Params(apply_dotted(_repo_params(), {"denoise.cnn1d.conv": [[4, 600, 2]]})),
                                        "cnn1d")
    with pytest.raises(UserError, match="denoise.cnn1d.conv"):
        r.build(513)


def test_clip_audio_counts_and_limits():
    y, n = denoise.clip_audio(torch.tensor([0.5, 1.5, -2.0, 0.0]))
    assert n == 2 and y.max() < 1.0 and y.min() == -1.0 and y.dtype == np.float32


# ------------------------------------------------------------------------------------------- frame models

def _speech_like(n: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonic 'syllables' with a wandering pitch and on/off envelopes: structure a denoiser can learn."""
    t = np.arange(n) / SR
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum((0.6 ** k) * np.sin(k * phase) for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.3 * env * voiced).astype(np.float32)


def toy_pair(gain: float = 1.0, snr_db: float = 5.0, seed: int = 0, with_test_ref: bool = True):
    """A noisy/clean training pair (4 s) and test files, all multiplied by `gain`."""
    rng = np.random.default_rng(seed)

    def pair(n):
        s = _speech_like(n, rng)
        noise = rng.standard_normal(n).astype(np.float32)
        noise *= np.sqrt((s ** 2).mean() / (noise ** 2).mean() / 10 ** (snr_db / 10))
        return gain * s, gain * (s + noise)

    tr_s, tr_x = pair(4 * SR)
    t1_s, t1_x = pair(SR)
    _, t2_x = pair(SR // 2)
    return SimpleNamespace(train_clean=tr_s, train_dirty=tr_x, test_01_x=t1_x,
                           test_01_s=t1_s if with_test_ref else None, test_02_x=t2_x, sr=SR)


def _recipe(kind: str, predict: str, epochs: int, lr: float) -> denoise.FrameRecipe:
    out_act = "sigmoid" if predict == "mask" else "softplus"
    arch = {"hidden": (32, 32)} if kind == "fc" else {"conv": ((4, 5, 2), (8, 3, 2)), "pool": 1}
    return denoise.FrameRecipe(kind=kind, dropout=0.0, out_act=out_act, predict=predict, epochs=epochs,
                               batch_size=16, lr=lr, weight_decay=0.0, **arch)


def _train(feats, kind: str, predict: str, epochs: int = 3, lr: float = 3e-3, seed: int = 0):
    torch.manual_seed(seed)
    r = _recipe(kind, predict, epochs, lr)
    return denoise.train_frame(r.build(feats.n_bins), feats, r, "cpu", torch.Generator().manual_seed(seed), "test")


def _denoise(den, rec) -> torch.Tensor:
    return den.denoise(rec, N_FFT, HOP, "cpu")


MODELS = [("fc", "mask"), ("fc", "magnitude"), ("cnn1d", "mask"), ("cnn1d", "magnitude")]


@pytest.mark.parametrize("noise_gain", [0.0, 1.0, -0.5])
def test_the_oracles_take_the_clean_spectrum_and_the_noisy_phase(noise_gain):
    """A "noise" that is a multiple of the speech changes the mixture's magnitude but not its phase
    (for gains above -1), so both oracles give the speech back exactly. Using |X| (the mixture's
    magnitude) would return (1 + gain) × speech."""
    clean = torch.from_numpy(_speech_like(SR, np.random.default_rng(3)))
    mix = clean * (1 + noise_gain)
    rec = denoise.Recording(mix=torch.stft(mix, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True,
                                           pad_mode="constant", return_complex=True).T,
                            noisy=mix, clean=clean)
    for wave in denoise.noisy_phase_oracles(rec, N_FFT, HOP).values():
        assert torch.allclose(wave, clean, atol=1e-5)


def test_the_phase_sensitive_oracle_beats_the_clean_magnitude_where_the_phases_differ():
    """|S| cos(∠S − ∠X) is the per-bin optimum of a non-negative magnitude with the noisy phase: its error
    in every bin is at most that of |S| itself, so on white noise it is the higher ceiling."""
    feats = pair_features(toy_pair(snr_db=0.0), N_FFT, HOP, "cpu", val_seconds=1.0)
    rec = feats.test_01
    clean_spec = torch.stft(rec.clean, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="constant",
                            return_complex=True).T
    cos = torch.cos(clean_spec.angle() - rec.mix.angle())
    err_psm = (clean_spec - (clean_spec.abs() * cos).clamp_min(0) * torch.exp(1j * rec.mix.angle())).abs()
    err_mag = (clean_spec - clean_spec.abs() * torch.exp(1j * rec.mix.angle())).abs()
    assert bool((err_psm <= err_mag + 1e-6).all())
    out = denoise._oracle_metrics(feats)
    assert out["test_01_snr_oracle_db"] > out["test_01_snr_clean_magnitude_db"] + 1.0


def test_the_oracle_ceiling_is_reported_for_every_clean_reference():
    feats = pair_features(toy_pair(), N_FFT, HOP, "cpu", val_seconds=1.0)
    out = denoise._oracle_metrics(feats)
    assert set(out) == {f"{split}_{m}_{kind}_db" for split in ("test_01", "val") for m in ("snr", "snri")
                        for kind in ("oracle", "clean_magnitude")}
    rep = snr_report(feats.val.clean, feats.val.noisy, feats.val.noisy)
    assert out["val_snri_oracle_db"] == pytest.approx(out["val_snr_oracle_db"] - float(rep.snr[0]))
    assert out["val_snri_oracle_db"] > 3  # 5 dB white noise: the clean magnitude removes most of it
    assert set(denoise._oracle_metrics(pair_features(toy_pair(with_test_ref=False), N_FFT, HOP, "cpu"))) == set()


@pytest.mark.parametrize("kind,predict", MODELS)
def test_scaling_the_audio_scales_the_output_and_keeps_every_snr(kind, predict):
    """Train and test audio × c → denoised output × c, identical validation curve and test SNR.
    Bugs caught: the mask dividing by the magnitude scale twice in training and once at inference
    (outputs `scale` times too small), an absolute log floor (inputs that depend on the recording's level)."""
    runs = {}
    for c in (1.0, 0.01, 30.0):
        feats = pair_features(toy_pair(gain=c), N_FFT, HOP, "cpu", val_seconds=1.0)
        den, hist = _train(feats, kind, predict)
        est = _denoise(den, feats.test_01)
        rep = snr_report(feats.test_01.clean, est, feats.test_01.noisy)
        runs[c] = (est / c, [r["val_snr_db"] for r in hist.rows], float(rep.snr[0]), hist.best["epoch"])
    ref_est, ref_curve, ref_snr, ref_best = runs[1.0]
    assert ref_est.abs().max() > 0
    for c in (0.01, 30.0):
        est, curve, snr, best = runs[c]
        assert torch.allclose(est, ref_est, rtol=1e-3, atol=1e-3 * float(ref_est.abs().max())), c
        assert np.allclose(curve, ref_curve, atol=1e-3), (c, curve, ref_curve)
        assert abs(snr - ref_snr) < 1e-3 and best == ref_best


@pytest.mark.parametrize("kind,predict", MODELS)
@pytest.mark.parametrize("gain", [1e-3, 50.0])
def test_output_level_matches_the_clean_target_far_from_unit_scale(kind, predict, gain):
    """Whatever the recording's level, the trained denoiser's output is at the clean speech's level."""
    feats = pair_features(toy_pair(gain=gain), N_FFT, HOP, "cpu", val_seconds=1.0)
    den, hist = _train(feats, kind, predict, epochs=6)
    scale = float(feats.train_mag_s.pow(2).mean().sqrt())
    assert not 0.1 < scale < 10  # the point of the test: a magnitude scale far from 1
    est = _denoise(den, feats.val)
    level_db = 20 * np.log10(float(est.pow(2).mean().sqrt()) / float(feats.val.clean.pow(2).mean().sqrt()))
    assert abs(level_db) < 3.0, level_db
    rep = snr_report(feats.val.clean, est, feats.val.noisy)
    assert rep.snri[0] > 0.5, rep.snri  # and it removes noise rather than only rescaling


class _Forbidden:
    """A test recording that fails the test when training or selection touches it."""

    def __getattr__(self, name):
        raise AssertionError(f"training/selection read a test recording ({name})")


# lr and epochs per case: a rate high enough that a later epoch overshoots, so an earlier one is restored
# (the shorter training part of the test-tail case needs the higher one)
@pytest.mark.parametrize("with_test_ref, test_seconds, epochs, lr", [(True, 0.0, 6, 1e-2), (False, 0.0, 6, 1e-2),
                                                                     (False, 0.5, 10, 3e-2)])
def test_selection_reads_only_the_training_pair_and_its_tail(with_test_ref, test_seconds, epochs, lr):
    feats = pair_features(toy_pair(with_test_ref=with_test_ref), N_FFT, HOP, "cpu", val_seconds=1.0,
                          test_seconds=test_seconds)
    assert (feats.test_01.clean is not None) == with_test_ref
    assert (feats.pair_test is not None) == bool(test_seconds)
    guarded = dataclasses.replace(feats, test_01=_Forbidden(), test_02=_Forbidden(),
                                  pair_test=_Forbidden() if test_seconds else None)
    den, hist = _train(guarded, "fc", "mask", epochs=epochs, lr=lr)
    curve = [r["val_snr_db"] for r in hist.rows]
    assert hist.best["epoch"] == 1 + int(np.argmax(curve)) < len(curve)  # an earlier epoch wins: restore it
    # the restored model is the selected epoch's: re-measuring the tail gives the selected number
    rep = snr_report(feats.val.clean, _denoise(den, feats.val), feats.val.noisy)
    assert abs(float(rep.snr[0]) - hist.best["val_snr_db"]) < 1e-4
    selection = denoise.frame_selection(feats)
    assert ("held-out 1 s of the training pair just before its last 0.5 s, the test tail" if test_seconds
            else "held-out last 1 s of the training pair") in selection
    assert ("test tail" in selection) == bool(test_seconds)


def test_without_a_tail_the_final_epoch_is_kept():
    feats = pair_features(toy_pair(), N_FFT, HOP, "cpu", val_seconds=0.0)
    assert feats.val is None
    den, hist = _train(dataclasses.replace(feats, test_01=_Forbidden(), test_02=_Forbidden()), "fc", "mask", epochs=2)
    assert hist.best["epoch"] == 2 and "val_snr_db" not in hist.rows[-1]
    assert denoise.frame_selection(feats).startswith("final epoch")


def test_rnn_mask_denoiser_ignores_the_overall_gain():
    """The IBM target is level-free; the input transform must be too: audio × c → output × c, same SNRs."""
    rng = np.random.default_rng(1)
    clean = [_speech_like(n, rng) for n in (3000, 4000, 3500, 2500)]
    noise = [0.1 * rng.standard_normal(len(s)).astype(np.float32) for s in clean]
    r = denoise.RnnRecipe(cell="gru", hidden=16, layers=1, bidirectional=False, dropout=0.0,
                          training=denoise.MaskTraining(binary=False, t_trunc=20, epochs=3, batch_size=2, lr=1e-2,
                                                        weight_decay=0.0, grad_clip=None, eval_batch=8))
    runs = {}
    for c in (1.0, 0.01, 30.0):
        s, n = [c * a for a in clean], [c * a for a in noise]
        x = [a + b for a, b in zip(s, n)]
        names = [str(i) for i in range(len(x))]
        tr = timit_split_features(x[:3], s[:3], n[:3], names[:3], N_FFT, HOP, "cpu")
        v = timit_split_features(x[3:], s[3:], n[3:], names[3:], N_FFT, HOP, "cpu", keep_waves=True)
        torch.manual_seed(0)
        model = denoise.build_mask_model(r.config(N_FFT // 2 + 1))
        _, vp, hist = denoise.train_mask_model(model, tr, v, r.training, N_FFT, HOP, "cpu",
                                               torch.Generator().manual_seed(0))
        runs[c] = (denoise.denoise_split(model, vp, N_FFT, HOP, 8, False) / c, [row["val_snr_db"] for row in hist.rows])
    ref_est, ref_curve = runs[1.0]
    for c in (0.01, 30.0):
        est, curve = runs[c]
        assert torch.allclose(est, ref_est, atol=1e-3 * float(ref_est.abs().max())), c
        assert np.allclose(curve, ref_curve, atol=1e-3), (c, curve, ref_curve)


def _mask_training_split(levels, seed=2):
    """Training mixtures (one per level: the speech and noise scaled by it) and one v/ mixture."""
    rng = np.random.default_rng(seed)
    clean = [c * _speech_like(n, rng) for c, n in zip((*levels, 1.0), (3000, 4000, 3500, 2600, 3000, 3300))]
    noise = [0.3 * c * rng.standard_normal(len(s)).astype(np.float32) for c, s in zip((*levels, 1.0), clean)]
    x = [a + b for a, b in zip(clean, noise)]
    names = [str(i) for i in range(len(x))]
    n = len(levels)
    tr = timit_split_features(x[:n], clean[:n], noise[:n], names[:n], N_FFT, HOP, "cpu")
    v = timit_split_features(x[n:], clean[n:], noise[n:], names[n:], N_FFT, HOP, "cpu", keep_waves=True)
    return tr, v


@pytest.mark.parametrize("t_trunc", [0, 7])
@pytest.mark.parametrize("loss_weight", ["uniform", "magnitude", "power"])
def test_mask_training_minimises_the_bce_weighted_by_name(loss_weight, t_trunc):
    """A learning rate too small to move the weights: the epoch's training loss is the untrained model's BCE
    over the valid bins of each shuffled batch, each bin weighted by its own mixture magnitude to the named
    power (mean 1), computed here by hand; a weight that drifted off its bin (chunking, padding, shuffling)
    would change it."""
    tr, v = _mask_training_split((1.0, 3.0, 0.3, 1.5))
    t = denoise.MaskTraining(binary=False, t_trunc=t_trunc, epochs=1, batch_size=2, lr=1e-30, weight_decay=0.0,
                             grad_clip=None, eval_batch=8, loss_weight=loss_weight)
    r = denoise.RnnRecipe(cell="gru", hidden=8, layers=1, bidirectional=True, dropout=0.0, training=t)
    torch.manual_seed(0)
    model = denoise.build_mask_model(r.config(N_FFT // 2 + 1))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    seed = 5
    transform, _, hist = denoise.train_mask_model(model, tr, v, t, N_FFT, HOP, "cpu",
                                                  torch.Generator().manual_seed(seed))
    model.load_state_dict(initial)
    power = {"uniform": 0, "magnitude": 1, "power": 2}[loss_weight]
    weight = tr.mag_x.double() ** power
    weight = weight / weight.mean()
    # every training piece's weighted BCE sum and bin count, in chunk order
    pieces = []
    for xs, ys, ws in zip(*(torch.split(a, tr.frames.tolist()) for a in (transform(tr.mag_x), tr.ibm.float(), weight))):
        for lo in range(0, len(xs), t_trunc or len(xs)):
            xp, yp, wp = xs[lo: lo + (t_trunc or len(xs))], ys[lo: lo + (t_trunc or len(xs))], ws[lo: lo + (t_trunc or len(xs))]
            logits = model(xp[None], torch.tensor([len(xp)]))[0].detach()
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, yp, reduction="none").double()
            pieces.append((float((bce * wp).sum()), bce.numel(), float(bce.sum())))
    order = torch.randperm(len(pieces), generator=torch.Generator().manual_seed(seed)).tolist()
    assert order != sorted(order)  # the batches really are shuffled
    batches = [order[lo: lo + 2] for lo in range(0, len(order), 2)]
    by_hand = lambda k: sum(len(b) * sum(pieces[i][k] for i in b) / sum(pieces[i][1] for i in b)  # noqa: E731
                            for b in batches) / len(pieces)
    assert hist.rows[0]["train_loss"] == pytest.approx(by_hand(0), rel=1e-5)
    if loss_weight != "uniform":  # and it is not the unweighted loss
        assert abs(by_hand(0) - by_hand(2)) > 1e-3


@pytest.mark.parametrize("loss_weight", ["uniform", "magnitude"])
def test_remixed_training_trains_on_a_fresh_remix_every_epoch(loss_weight):
    """remix: with a learning rate too small to move the weights and one batch holding every piece, epoch 1's
    loss is the BCE on the remix drawn first from the run's seed (its |X| through tr's input transform, its IBM
    as the targets, its |X| as the weights), not the fixed mixtures'; epoch 2 trains on another remix."""
    tr, v = _mask_training_split((1.0, 3.0, 0.3, 1.5))
    t = denoise.MaskTraining(binary=False, t_trunc=7, epochs=2, batch_size=1000, lr=1e-30, weight_decay=0.0,
                             grad_clip=None, eval_batch=8, loss_weight=loss_weight, remix=True)
    r = denoise.RnnRecipe(cell="gru", hidden=8, layers=1, bidirectional=True, dropout=0.0, training=t)
    torch.manual_seed(0)
    model = denoise.build_mask_model(r.config(N_FFT // 2 + 1))
    with torch.no_grad():  # confident logits, so that the loss depends on the targets, not only on ln 2
        model.out.weight.mul_(30.0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    transform, _, hist = denoise.train_mask_model(model, tr, v, t, N_FFT, HOP, "cpu", torch.Generator().manual_seed(5))
    assert torch.equal(transform(tr.mag_x), denoise.ModelInput().fit(tr.mag_x)(tr.mag_x))  # fitted on the fixed tr
    model.load_state_dict(initial)

    def loss_on(mag_x: torch.Tensor, ibm: torch.Tensor) -> float:
        w = mag_x.double() ** (loss_weight == "magnitude")
        w = w / w.mean()
        total = count = 0.0
        for xs, ys, ws in zip(*(torch.split(a, tr.frames.tolist()) for a in (transform(mag_x), ibm.float(), w))):
            for lo in range(0, len(xs), 7):
                logits = model(xs[None, lo: lo + 7], torch.tensor([len(xs[lo: lo + 7])]))[0].detach()
                bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, ys[lo: lo + 7], reduction="none")
                total, count = total + float((bce.double() * ws[lo: lo + 7]).sum()), count + bce.numel()
        return total / count

    remixed = loss_on(*denoise.remix_magnitudes(tr.mag_s, tr.mag_n, tr.frames, torch.Generator().manual_seed(5)))
    assert hist.rows[0]["train_loss"] == pytest.approx(remixed, rel=1e-5)
    assert abs(remixed - loss_on(tr.mag_x, tr.ibm)) > 1e-3 * remixed
    assert abs(hist.rows[1]["train_loss"] - hist.rows[0]["train_loss"]) > 1e-3 * remixed


def test_remix_without_the_training_sources_is_one_line():
    tr, v = _mask_training_split((1.0,))
    t = denoise.MaskTraining(binary=False, t_trunc=0, epochs=1, batch_size=1, lr=1e-3, weight_decay=0.0,
                             grad_clip=None, eval_batch=8, remix=True)
    model = denoise.build_mask_model(denoise.MaskFCRecipe(hidden=(4,), context=0, dropout=0.0, training=t)
                                     .config(N_FFT // 2 + 1))
    with pytest.raises(UserError, match="remix needs the training split's sources"):
        denoise.train_mask_model(model, dataclasses.replace(tr, mag_n=None), v, t, N_FFT, HOP, "cpu",
                                 torch.Generator().manual_seed(0))


def test_the_divergence_limit_follows_each_batch_s_weight():
    """Power weights of mixtures 30x apart in level put most of the weight in the loud file's batch: an untrained
    model's loss there is far above ln 2, yet it has not diverged; the limit is ln 2 x the batch's mean weight."""
    tr, v = _mask_training_split((30.0, 1.0))
    t = denoise.MaskTraining(binary=False, t_trunc=0, epochs=1, batch_size=1, lr=1e-30, weight_decay=0.0,
                             grad_clip=None, eval_batch=8, loss_weight="power", divergence_multiple=1.5)
    r = denoise.RnnRecipe(cell="gru", hidden=8, layers=1, bidirectional=False, dropout=0.0, training=t)
    torch.manual_seed(0)
    _, _, hist = denoise.train_mask_model(denoise.build_mask_model(r.config(N_FFT // 2 + 1)), tr, v, t, N_FFT, HOP,
                                          "cpu", torch.Generator().manual_seed(0))
    assert not hist.diverged and math.isfinite(hist.rows[0]["train_loss"])
    w = tr.mag_x.double() ** 2
    w = w / w.mean()
    assert float(w[: int(tr.frames[0])].mean()) > 1.5  # the loud file's batch alone would pass a fixed 1.5 ln 2


def test_silent_training_mixtures_with_a_loss_weight_are_one_line(tmp_path):
    tr, v = _mask_training_split((1.0,))
    silent = dataclasses.replace(tr, mag_x=torch.zeros_like(tr.mag_x))
    t = denoise.MaskTraining(binary=False, t_trunc=0, epochs=1, batch_size=1, lr=1e-3, weight_decay=0.0,
                             grad_clip=None, eval_batch=8, loss_weight="magnitude")
    model = denoise.build_mask_model(denoise.MaskFCRecipe(hidden=(4,), context=0, dropout=0.0, training=t)
                                     .config(N_FFT // 2 + 1))
    with pytest.raises(UserError, match="training mixtures: loss weight 'magnitude': every magnitude is zero"):
        denoise.train_mask_model(model, silent, v, t, N_FFT, HOP, "cpu", torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------- the stages

TINY = {
    "device": "cpu", "data.denoise.train_seconds": 5.0, "data.denoise.test_seconds": 2.0,
    "data.timit_denoise.n_train_sentences": 2, "data.timit_denoise.n_val_sentences": 1,
    "data.timit_denoise.n_test_sentences": 1, "data.timit_denoise.noises": ["white", "babble"],
    "data.timit_denoise.noise_pool_seconds": 4.0,
    "denoise.frame.val_seconds": 1.5,
    "denoise.fc.epochs": 3, "denoise.fc.hidden": [32, 32], "denoise.cnn1d.epochs": 2,
    "denoise.cnn1d.conv": [[4, 9, 4], [8, 5, 2]], "denoise.rnn.epochs": 2, "denoise.rnn.hidden": 16,
    "denoise.rnn.layers": 1, "denoise.rnn.t_trunc": 20, "denoise.mask_fc.epochs": 2, "denoise.mask_fc.hidden": [16],
    "denoise.mask_fc.t_trunc": 20,
}
RUNS = {"denoise_features": denoise.run_features, "denoise_features_timit": denoise.run_features_timit,
        "denoise_frame": denoise.run_frame, "denoise_rnn": denoise.run_rnn, "denoise_mask_fc": denoise.run_mask_fc,
        "denoise_compare": denoise.run_compare}


def _run(workdir: Path, stage: str, variant: str | None = None, **updates) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(apply_dotted(_repo_params(), {**TINY, **updates})))
    stage_main(stage, RUNS[stage], "doc", variant=None if variant is None else "model",
               choices=denoise.FRAME_MODELS, argv=[] if variant is None else [variant])


def _metrics(root: Path, step: str) -> dict:
    def no_nan(token):
        raise AssertionError(f"{step}.json holds {token}: metrics must be valid JSON")
    return json.loads((root / "metrics/denoise" / f"{step}.json").read_text(), parse_constant=no_nan)


def _csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory) -> Path:
    """data/ with tiny synthetic denoise and timit sets and their features."""
    root = tmp_path_factory.mktemp("denoise_lab")
    params = Params(apply_dotted(_repo_params(), TINY))
    for name in ("denoise", "timit_denoise"):
        acquire(name, params, seed=0, root=root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        _run(root, "denoise_features")
        _run(root, "denoise_features_timit")
    return root / "data"


@pytest.fixture
def lab(lab_data, tmp_path, monkeypatch) -> Path:
    shutil.copytree(lab_data, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_family_runs_and_selects_on_the_tail(lab):
    for stage, variant in (("denoise_frame", "fc"), ("denoise_frame", "cnn1d"), ("denoise_rnn", None),
                           ("denoise_mask_fc", None), ("denoise_compare", None)):
        _run(lab, stage, variant)
    fc = _metrics(lab, "fc")
    rows = _csv(lab / "plots/denoise/fc/curves.csv")
    curve = [float(r["val_snr_db"]) for r in rows]
    assert "test" not in " ".join(rows[0])  # the curve that selects holds no test number
    assert fc["best_epoch"] == 1 + curve.index(max(curve)) and fc["val_snr_db"] == pytest.approx(max(curve), abs=1e-4)
    assert "held-out last 1.5 s" in fc["selection"] and fc["diverged"] is False
    for split in ("test_01", "val"):
        assert fc[f"{split}_snri_db"] == pytest.approx(fc[f"{split}_snr_db"] - fc[f"{split}_snr_in_db"])
        assert fc[f"{split}_snri_oracle_db"] > fc[f"{split}_snri_db"]  # the ceiling, next to the number
    assert [float(r["val_snr_oracle_db"]) for r in rows] == pytest.approx([fc["val_snr_oracle_db"]] * len(rows))
    assert "seconds" not in json.dumps(fc)  # timings live in timings/, not in metrics
    assert json.loads((lab / "timings/denoise/fc.json").read_text())["train_seconds"] > 0
    n01 = len(read_wav(lab / "data/raw/denoise/test_01_x.wav"))
    assert len(read_wav(lab / "audio/denoise/fc/test_01.wav")) == n01
    assert sorted(p.name for p in (lab / "plots/denoise/fc").iterdir()) == ["curves.csv", "curves.png"]
    assert not load_checkpoint(lab / "data/models/denoise/cnn1d.pt")["diverged"]
    rnn = _metrics(lab, "rnn")
    assert rnn["v_snr_oracle_ibm_db"] > rnn["v_snr_in_db"] and rnn["selection"].startswith("best epoch by mean SNR")
    assert rnn["loss_weight"] == "magnitude" and rnn["remix"] is False
    assert sorted(p.name for p in (lab / "audio/denoise/rnn").iterdir())[1].endswith("denoised.wav")
    assert len(list((lab / "data/outputs/denoise/rnn/te").glob("*.wav"))) == 2
    mask_fc = _metrics(lab, "mask_fc")
    assert mask_fc["selection"] == rnn["selection"] and mask_fc["te_files"] == 0
    assert mask_fc["v_snr_oracle_ibm_db"] == rnn["v_snr_oracle_ibm_db"]  # the same v/, the same ceiling
    curve = [float(r["val_snr_db"]) for r in _csv(lab / "plots/denoise/mask_fc/curves.csv")]
    assert mask_fc["v_snr_db"] == pytest.approx(max(curve), abs=1e-4)
    assert load_checkpoint(lab / "data/models/denoise/mask_fc.pt")["config"]["kind"] == "mask_fc"
    assert not (lab / "data/outputs/denoise/mask_fc").exists()  # the course's submission is the RNN's
    cmp_ = _metrics(lab, "compare")
    assert cmp_["fc"]["dataset"] == "denoise test_01" and cmp_["fc"]["snr_db"] == fc["test_01_snr_db"]
    assert cmp_["rnn_gain_over_mask_fc_db"] == pytest.approx(rnn["v_snr_db"] - mask_fc["v_snr_db"])
    assert cmp_["mask_fc"]["dataset"] == cmp_["rnn"]["dataset"] == "timit v/ (mean)"
    assert cmp_["loss_weight"] == {"rnn": "magnitude", "mask_fc": "magnitude"} and cmp_["same_loss_weight"] is True
    assert cmp_["remix"] == {"rnn": False, "mask_fc": False} and cmp_["same_remix"] is True


def test_a_gain_over_an_fc_mask_trained_on_another_loss_or_data_is_flagged(lab, capsys):
    """The FC mask trained with the plain BCE on remixed data (the stage runs with remix on), the RNN with the
    weighted BCE on the fixed mixtures: compare records both differences and warns about each."""
    for stage, variant in (("denoise_frame", "fc"), ("denoise_frame", "cnn1d"), ("denoise_rnn", None)):
        _run(lab, stage, variant)
    _run(lab, "denoise_mask_fc", **{"denoise.mask_fc.loss_weight": "uniform", "denoise.mask_fc.remix": True})
    mask_fc = _metrics(lab, "mask_fc")
    assert mask_fc["remix"] is True and math.isfinite(mask_fc["v_snr_db"])
    _run(lab, "denoise_compare")
    assert _metrics(lab, "rnn")["loss_weight"] == "magnitude"
    cmp_ = _metrics(lab, "compare")
    assert cmp_["loss_weight"] == {"rnn": "magnitude", "mask_fc": "uniform"} and cmp_["same_loss_weight"] is False
    assert cmp_["remix"] == {"rnn": False, "mask_fc": True} and cmp_["same_remix"] is False
    err = capsys.readouterr().err
    assert "different loss_weight (rnn: magnitude, mask_fc: uniform)" in err
    assert "different remix (rnn: False, mask_fc: True)" in err


def test_the_submission_zip_is_the_same_bytes_on_a_rerun(lab):
    """te.zip holds no file times: re-running the RNN stage with the same params gives the same bytes."""
    zips = []
    for _ in range(2):
        _run(lab, "denoise_rnn")
        zips.append((lab / "data/outputs/denoise/rnn/te.zip").read_bytes())
    assert zips[0] == zips[1]
    names = zipfile.ZipFile(io.BytesIO(zips[0])).namelist()
    assert len(names) == 2 and all(n.startswith("te/") and n.endswith(".wav") for n in names)


def test_without_the_clean_test_reference_the_tail_is_the_number(lab):
    (lab / "data/raw/denoise/test_01_s.wav").unlink()
    _run(lab, "denoise_features")
    _run(lab, "denoise_frame", "fc")
    fc = _metrics(lab, "fc")
    assert "test_01_snr_db" not in fc and fc["val_snr_db"] is not None and fc["selection"].startswith("best epoch")
    assert "test_01_snri_oracle_db" not in fc and fc["val_snri_oracle_db"] > fc["val_snri_db"]
    assert (lab / "audio/denoise/fc/test_01.wav").exists()
    assert _metrics(lab, "features")["test_01_clean_reference"] is False


def test_the_kit_s_layout_scores_the_pair_s_test_tail(lab):
    """No test_01_s (the kit): with a test tail the frame models are scored and compared on it, never on the
    validation tail that chose their epoch; the pieces partition the training pair."""
    (lab / "data/raw/denoise/test_01_s.wav").unlink()
    _run(lab, "denoise_features", **{"denoise.frame.test_seconds": 1.0})
    feats = _metrics(lab, "features")
    assert feats["test_seconds"] == 1.0 and feats["pair_test_frames"] > 0
    for model in denoise.FRAME_MODELS:
        _run(lab, "denoise_frame", model)
    for stage in ("denoise_rnn", "denoise_mask_fc", "denoise_compare"):
        _run(lab, stage)
    fc = _metrics(lab, "fc")
    assert "test_01_snr_db" not in fc and fc["pair_test_snr_in_db"] != fc["val_snr_in_db"]
    assert fc["pair_test_snri_db"] == pytest.approx(fc["pair_test_snr_db"] - fc["pair_test_snr_in_db"])
    assert fc["pair_test_snri_oracle_db"] > fc["pair_test_snri_db"]
    assert "last 1 s, the test tail" in fc["selection"]
    # the test tail is the pair's last second, denoised and written beside test_01
    assert len(read_wav(lab / "audio/denoise/fc/pair_test.wav")) == _repo_params()["data"]["denoise"]["sr"]
    cmp_ = _metrics(lab, "compare")
    for model in denoise.FRAME_MODELS:
        assert cmp_[model]["dataset"] == "denoise pair's test tail"
        assert cmp_[model]["snri_db"] == _metrics(lab, model)["pair_test_snri_db"]


DIVERGE = [("denoise_frame", "fc", {"denoise.fc.lr": 1e30}, "fc", "fc.pt"),
           ("denoise_frame", "cnn1d", {"denoise.cnn1d.lr": 1e30}, "cnn1d", "cnn1d.pt"),
           ("denoise_rnn", None, {"denoise.rnn.lr": 1e30}, "rnn", "rnn.pt"),
           ("denoise_mask_fc", None, {"denoise.mask_fc.lr": 1e30}, "mask_fc", "mask_fc.pt")]


@pytest.mark.parametrize("stage, variant, updates, step, checkpoint", DIVERGE, ids=[d[3] for d in DIVERGE])
def test_a_diverging_learning_rate_is_recorded_not_scored(lab, capsys, stage, variant, updates, step, checkpoint):
    """lr 1e30: the stage ends normally with a warning, metrics say diverged, curves are drawn, the saved model
    is marked diverged (loading it is refused), and nothing is scored or written from its weights.
    Bugs caught: scoring/writing audio from a NaN model, saving it as good, no curves for a diverged run."""
    _run(lab, stage, variant, **updates)
    err = capsys.readouterr().err
    assert "WARNING" in err and "diverged" in err and "Traceback" not in err
    m = _metrics(lab, step)
    assert m["diverged"] is True and m["diverged_at"] == 1 and m["best_epoch"] is None
    scored = ["val_snr_db", "test_01_snr_db"] if step in ("fc", "cnn1d") else ["v_snr_db", "v_snri_db"]
    assert all(k in m and m[k] is None for k in scored), {k: m.get(k) for k in scored}
    with pytest.raises(UserError, match="diverged"):
        load_checkpoint(lab / "data/models/denoise" / checkpoint)
    assert load_torch(lab / "data/models/denoise" / checkpoint)["diverged"] is True
    rows = _csv(lab / f"plots/denoise/{step}/curves.csv")
    assert [int(r["epoch"]) for r in rows] == [1] and not math.isfinite(float(rows[0]["train_loss"] or "nan"))
    assert (lab / f"plots/denoise/{step}/curves.png").stat().st_size > 0
    assert not list((lab / f"audio/denoise/{step}").glob("*.wav"))
    for other_stage, other, other_step in (("denoise_frame", "fc", "fc"), ("denoise_frame", "cnn1d", "cnn1d"),
                                           ("denoise_rnn", None, "rnn"), ("denoise_mask_fc", None, "mask_fc")):
        if other_step != step:
            _run(lab, other_stage, other)
    _run(lab, "denoise_compare")  # a diverged model leaves a gap in the comparison, not a crash
    assert _metrics(lab, "compare")[step]["snr_db"] is None
