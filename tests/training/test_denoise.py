"""Frame denoisers (FC, 1-D CNN): level invariance, output level, and selection on the held-out tail only."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dlsys.evaluation.reconstruct import snr_report
from dlsys.features.denoise_features import denoise_features
from dlsys.models.denoisers import CNN1dDenoiser, FCDenoiser
from dlsys.training.denoise import TrainConfig, frame_selection, train_frame_denoiser

SR, N_FFT, HOP = 8000, 128, 64


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


def _model(kind: str, predict: str) -> torch.nn.Module:
    out_act = "sigmoid" if predict == "mask" else "softplus"
    n_bins = N_FFT // 2 + 1
    if kind == "fc":
        return FCDenoiser(n_bins, [32, 32], 0.0, out_act)
    return CNN1dDenoiser(n_bins, [[4, 5, 2], [8, 3, 2]], 1, 0.0, out_act)


def _train(feats: dict, kind: str, predict: str, epochs: int = 3, lr: float = 3e-3, seed: int = 0):
    torch.manual_seed(seed)
    model = _model(kind, predict)
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=lr)
    return train_frame_denoiser(model, feats, cfg, "cpu", torch.Generator().manual_seed(seed), "log", 1e-4,
                                predict, "test")


def _denoise(den, feats: dict, name: str) -> torch.Tensor:
    return den.denoise(feats[f"{name}_mix"], len(feats[f"{name}_x"]), N_FFT, HOP)


MODELS = [("fc", "mask"), ("fc", "magnitude"), ("cnn1d", "mask"), ("cnn1d", "magnitude")]


@pytest.mark.parametrize("kind,predict", MODELS)
def test_scaling_the_audio_scales_the_output_and_keeps_every_snr(kind, predict):
    """Train and test audio × c → denoised output × c, identical validation curve and test SNR."""
    runs = {}
    for c in (1.0, 0.01, 30.0):
        feats = denoise_features(toy_pair(gain=c), N_FFT, HOP, "cpu", val_seconds=1.0)
        den, hist = _train(feats, kind, predict)
        est = _denoise(den, feats, "test_01")
        rep = snr_report(feats["test_01_s"], est, feats["test_01_x"])
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
    feats = denoise_features(toy_pair(gain=gain), N_FFT, HOP, "cpu", val_seconds=1.0)
    den, hist = _train(feats, kind, predict, epochs=6)
    scale = float(feats["train_mag_s"].pow(2).mean().sqrt())
    assert not 0.1 < scale < 10  # the point of the test: a magnitude scale far from 1
    est = _denoise(den, feats, "val")
    level_db = 20 * np.log10(float(est.pow(2).mean().sqrt()) / float(feats["val_s"].pow(2).mean().sqrt()))
    assert abs(level_db) < 3.0, level_db
    rep = snr_report(feats["val_s"], est, feats["val_x"])
    assert rep.snri[0] > 0.5, rep.snri  # and it removes noise rather than only rescaling


class _Guarded(dict):
    """Features that fail the test when the test files' entries are read."""

    def __getitem__(self, key):
        if key.startswith("test_"):
            raise AssertionError(f"training/selection read {key!r}")
        return super().__getitem__(key)

    def get(self, key, default=None):
        return self[key] if key in self else default


@pytest.mark.parametrize("with_test_ref", [True, False])
def test_selection_reads_only_the_training_pair_and_its_tail(with_test_ref):
    feats = denoise_features(toy_pair(with_test_ref=with_test_ref), N_FFT, HOP, "cpu", val_seconds=1.0)
    assert ("test_01_s" in feats) == with_test_ref
    den, hist = _train(_Guarded(feats), "fc", "mask", epochs=6, lr=1e-2)
    curve = [r["val_snr_db"] for r in hist.rows]
    assert hist.best["epoch"] == 1 + int(np.argmax(curve)) < len(curve)  # an earlier epoch wins: restore it
    # the restored model is the selected epoch's: re-measuring the tail gives the selected number
    rep = snr_report(feats["val_s"], _denoise(den, feats, "val"), feats["val_x"])
    assert abs(float(rep.snr[0]) - hist.best["val_snr_db"]) < 1e-4
    assert "held-out last 1 s" in frame_selection(feats)


def test_without_a_tail_the_final_epoch_is_kept():
    feats = denoise_features(toy_pair(), N_FFT, HOP, "cpu", val_seconds=0.0)
    assert "val_mix" not in feats
    den, hist = _train(_Guarded(feats), "fc", "mask", epochs=2)
    assert hist.best["epoch"] == 2 and "val_snr_db" not in hist.rows[-1]
    assert frame_selection(feats).startswith("final epoch")


def test_rnn_mask_denoiser_ignores_the_overall_gain():
    """The IBM target is level-free; the input transform must be too: audio × c → output × c, same SNRs."""
    from dlsys.features.denoise_features import timit_split_features
    from dlsys.models.denoisers import RNNMaskDenoiser
    from dlsys.training.denoise import denoise_split, train_mask_rnn

    rng = np.random.default_rng(1)
    clean = [_speech_like(n, rng) for n in (3000, 4000, 3500, 2500)]
    noise = [0.1 * rng.standard_normal(len(s)).astype(np.float32) for s in clean]
    runs = {}
    for c in (1.0, 0.01, 30.0):
        s, n = [c * a for a in clean], [c * a for a in noise]
        x = [a + b for a, b in zip(s, n)]
        names = [str(i) for i in range(len(x))]
        tr = timit_split_features(x[:3], s[:3], n[:3], names[:3], N_FFT, HOP, "cpu")
        v = timit_split_features(x[3:], s[3:], n[3:], names[3:], N_FFT, HOP, "cpu", keep_waves=True)
        torch.manual_seed(0)
        model = RNNMaskDenoiser(N_FFT // 2 + 1, "gru", 16, 1)
        transform, vp, hist = train_mask_rnn(model, tr, v, TrainConfig(epochs=3, batch_size=2, lr=1e-2), "cpu",
                                             torch.Generator().manual_seed(0), "log", 1e-4, 20, 8, False, N_FFT, HOP)
        runs[c] = (denoise_split(model, vp, N_FFT, HOP, 8, False) / c, [r["val_snr_db"] for r in hist.rows])
    ref_est, ref_curve = runs[1.0]
    for c in (0.01, 30.0):
        est, curve = runs[c]
        assert torch.allclose(est, ref_est, atol=1e-3 * float(ref_est.abs().max())), c
        assert np.allclose(curve, ref_curve, atol=1e-3), (c, curve, ref_curve)
