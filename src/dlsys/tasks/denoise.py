"""Speech denoising: frame denoisers (FC, 1-D CNN) on the HW2 recordings, a recurrent IBM denoiser on timit.

Stages (params group `denoise`, tests in tests/tasks/test_denoise.py and tests/stages/test_denoise_e2e.py):
- `denoise_features` → `run_features`: STFT of the HW2 files; the last `denoise.frame.val_seconds` of the
  training pair are held out, transformed on their own (features/denoise_features.py: `pair_features`).
- `denoise_features_timit` → `run_features_timit`: STFT and ideal binary masks of the tr/v/te mixtures.
- `denoise_frame@{fc,cnn1d}` → `run_frame`: a frame model (models/denoisers.py) maps each normalised noisy
  log-magnitude column to a gain on |X| (`predict: mask`) or to |S| itself (`predict: magnitude`); MSE
  against |S|; noisy-phase reconstruction (features/stft.py). Writes denoised test_01 / test_02 to
  audio/denoise/<model>/.
- `denoise_rnn` → `run_rnn`: GRU/LSTM mask over whole utterances, BCE against the IBM, Ŝ = M̂ ⊙ X; te/
  denoised into data/outputs/denoise/rnn/ and te.zip (what the course asks to submit). `loss_weight` picks
  how each bin's BCE term counts (`BIN_WEIGHTS`): all alike (`uniform`, the course's) or by the mixture's
  magnitude or power, which puts the effort on the loud bins that decide the SNR.
- `denoise_mask_fc` → `run_mask_fc`: the RNN's baseline, a per-frame MLP mask (±`context` frames) trained on
  the same tr/ with the same target, loss (set both `loss_weight`s alike) and selection on v/; only the
  memory differs.
- `denoise_compare` → `run_compare`: the four side by side, and the RNN's gain over the FC mask in dB.

Model selection: the frame models keep the epoch with the best SNR on the held-out tail of the training
pair (never trained on; the final epoch when there is no tail); test_01's SNR, when its clean reference
exists, is a test number never used to choose. The RNN and the FC mask keep their best epoch by mean SNR
over v/ (speakers disjoint from te/). Every metrics file says so.

Magnitudes enter and leave a frame model in units of `scale` (the RMS clean training magnitude) on every
path, and the input transform's log floor is relative to the training level: the same audio at any gain
gives the same model inputs, and the output follows the gain.
"""

from __future__ import annotations

import json
import logging
import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from dlsys.core.context import StageContext
from dlsys.core.errors import UserError
from dlsys.core.outputs import (AUDIO_ROOT, METRICS_ROOT, atomic_dir, atomic_path, load_torch, save_torch,
                                write_table_csv)
from dlsys.core.params import Params
from dlsys.data.audio.sets import load_denoise, load_timit
from dlsys.data.registry import raw_dir
from dlsys.data.wav import read_wav, write_wav
from dlsys.evaluation.snr import snr_report, snr_report_many
from dlsys.features.denoise_features import (BIN_WEIGHTS, InputTransform, PairFeatures, Recording, SplitFeatures,
                                             bin_weights, chunk_frames, pad_frames, pair_features, remix_magnitudes,
                                             split_waves, timit_split_features)
from dlsys.features.stft import masked_istft_many, reconstruct, stft
from dlsys.models.denoisers import (CNN1dDenoiser, FCDenoiser, FrameMaskFC, RNNMaskDenoiser, cnn1d_flat_size,
                                    frame_mask, masked_bce, masked_mean)
from dlsys.plots import new_figure, save_figure, titled
from dlsys.plots.history import plot_history
from dlsys.training import EpochLog, EpochTensors, TensorBatches, fit

log = logging.getLogger("dlsys.denoise")

PAIR_FEATURES = "pair.pt"      # data/features/denoise/<this>
TIMIT_FEATURES = "timit.pt"
TIMIT_SPLITS = ("tr", "v", "te")
FRAME_MODELS = ("fc", "cnn1d")
TITLES = {"fc": "FC denoiser", "cnn1d": "1-D CNN denoiser"}
RNN_OUTPUTS = Path("data/outputs/denoise/rnn")   # te/*.wav and te.zip, the course's submission
PCM16_MAX = 32767 / 32768
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold


# ============================================================================ recipes

def divergence_limit(p: Params) -> float:
    """params `denoise.divergence_multiple`: a training loss at or above this multiple of a trivial predictor's
    counts as diverged, finite or not (a saturated network can keep a finite loss of 1e29)."""
    return p.float("denoise.divergence_multiple", gt=1.0)


def guard_loss(loss: torch.Tensor, limit: float | torch.Tensor) -> torch.Tensor:
    """The loss, or +inf (which `fit` records as divergence) once it reaches `limit`; no host sync, and the
    step that reached it changes nothing (its gradient is zero)."""
    return torch.where(loss < limit, loss, torch.full_like(loss, math.inf))


@dataclass(frozen=True)
class Spectral:
    """params `denoise.stft`: the analysis (librosa's conventions) and files per batched STFT call."""
    n_fft: int
    hop: int
    batch_size: int

    @classmethod
    def from_params(cls, p: Params) -> "Spectral":
        s = p.sub("denoise.stft")
        n_fft = s.int("n_fft", lo=16)
        return cls(n_fft=n_fft, hop=s.int("hop", lo=1, hi=n_fft), batch_size=s.int("batch_size", lo=1))


@dataclass(frozen=True)
class ModelInput:
    """params `denoise.input`, `denoise.log_floor`: what every denoiser reads (features/denoise_features.py)."""
    kind: str = "log"
    log_floor: float = 1e-4

    @classmethod
    def from_params(cls, p: Params) -> "ModelInput":
        return cls(kind=p.choice("denoise.input", ["log", "linear"]), log_floor=p.float("denoise.log_floor", lo=0.0))

    def fit(self, mag: torch.Tensor) -> InputTransform:
        return InputTransform.fit(mag, self.kind, self.log_floor)


@dataclass(frozen=True)
class FrameRecipe:
    """params `denoise.<fc|cnn1d>`: architecture, what the model predicts, optimisation."""
    kind: str
    dropout: float
    out_act: str
    predict: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    hidden: tuple[int, ...] = ()
    conv: tuple[tuple[int, int, int], ...] = ()
    pool: int = 1
    inputs: ModelInput = ModelInput()
    divergence_multiple: float = math.inf

    @classmethod
    def from_params(cls, p: Params, kind: str) -> "FrameRecipe":
        if kind not in FRAME_MODELS:
            raise UserError(f"unknown frame model {kind!r}; known: {', '.join(FRAME_MODELS)}")
        g = p.sub(f"denoise.{kind}")
        common = dict(kind=kind, dropout=g.float("dropout", lo=0.0, hi=0.95),
                      out_act=g.choice("out_act", ["relu", "softplus", "sigmoid"]),
                      predict=g.choice("predict", ["mask", "magnitude"]), epochs=g.int("epochs", lo=1),
                      batch_size=g.int("batch_size", lo=1), lr=g.float("lr", gt=0.0),
                      weight_decay=g.float("weight_decay", lo=0.0), inputs=ModelInput.from_params(p),
                      divergence_multiple=divergence_limit(p))
        if kind == "fc":
            return cls(**common, hidden=tuple(g.list("hidden", int, min_len=2, lo=1)))
        conv = g.raw("conv")
        if (not isinstance(conv, list) or not conv
                or not all(isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                       and v >= 1 for v in c) for c in conv)):
            raise UserError(f"params.yaml: 'denoise.cnn1d.conv' must be a non-empty list of [channels, kernel, "
                            f"stride] positive integers, got {conv!r}")
        return cls(**common, conv=tuple(tuple(c) for c in conv), pool=g.int("pool", lo=1))

    def config(self, n_bins: int) -> dict:
        """What rebuilds the model (stored in its checkpoint)."""
        if self.kind == "fc":
            return {"kind": "fc", "n_bins": n_bins, "hidden": list(self.hidden), "dropout": self.dropout,
                    "out_act": self.out_act}
        return {"kind": "cnn1d", "n_bins": n_bins, "conv": [list(c) for c in self.conv], "pool": self.pool,
                "dropout": self.dropout, "out_act": self.out_act}

    def build(self, n_bins: int) -> torch.nn.Module:
        return build_frame_model(self.config(n_bins))


def build_frame_model(config: dict) -> torch.nn.Module:
    c = dict(config)
    kind = c.pop("kind")
    if kind == "fc":
        return FCDenoiser(c["n_bins"], c["hidden"], c["dropout"], c["out_act"])
    try:
        cnn1d_flat_size(c["n_bins"], c["conv"], c["pool"])
    except ValueError as exc:
        raise UserError(f"params.yaml: 'denoise.cnn1d.conv' / 'pool': {exc}") from None
    return CNN1dDenoiser(c["n_bins"], c["conv"], c["pool"], c["dropout"], c["out_act"])


@dataclass(frozen=True)
class MaskTraining:
    """How every IBM mask model is trained and scored (params `denoise.rnn` / `denoise.mask_fc`): the mask
    kind, training pieces, optimisation, evaluation batch, input transform and divergence limit."""
    binary: bool
    t_trunc: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    grad_clip: float | None
    eval_batch: int
    inputs: ModelInput = ModelInput()
    divergence_multiple: float = math.inf
    loss_weight: str = "uniform"  # a BIN_WEIGHTS name: how much each bin's BCE term counts
    remix: bool = False  # new training mixtures every epoch (remix_magnitudes) instead of the fixed ones

    @classmethod
    def from_group(cls, g: Params, p: Params) -> "MaskTraining":
        return cls(binary=g.choice("mask", ["soft", "binary"]) == "binary", t_trunc=g.int("t_trunc", lo=0),
                   epochs=g.int("epochs", lo=1), batch_size=g.int("batch_size", lo=1), lr=g.float("lr", gt=0.0),
                   weight_decay=g.float("weight_decay", lo=0.0), grad_clip=g.float("grad_clip", lo=0.0) or None,
                   eval_batch=g.int("eval_batch", lo=1), inputs=ModelInput.from_params(p),
                   divergence_multiple=divergence_limit(p), loss_weight=g.choice("loss_weight", list(BIN_WEIGHTS)),
                   remix=g.bool("remix"))


@dataclass(frozen=True)
class RnnRecipe:
    """params `denoise.rnn`: the recurrent architecture and its training."""
    cell: str
    hidden: int
    layers: int
    bidirectional: bool
    dropout: float
    training: MaskTraining

    @classmethod
    def from_params(cls, p: Params) -> "RnnRecipe":
        g = p.sub("denoise.rnn")
        return cls(cell=g.choice("cell", ["gru", "lstm"]), hidden=g.int("hidden", lo=1), layers=g.int("layers", lo=1),
                   bidirectional=g.bool("bidirectional"), dropout=g.float("dropout", lo=0.0, hi=0.95),
                   training=MaskTraining.from_group(g, p))

    def config(self, n_bins: int) -> dict:
        return {"kind": "rnn", "n_bins": n_bins, "cell": self.cell, "hidden": self.hidden, "layers": self.layers,
                "bidirectional": self.bidirectional, "dropout": self.dropout}

    def title(self) -> str:
        return f"{'bidirectional ' if self.bidirectional else ''}{self.cell.upper()} IBM denoiser"


@dataclass(frozen=True)
class MaskFCRecipe:
    """params `denoise.mask_fc`: the per-frame MLP mask baseline, trained and selected exactly as the RNN."""
    hidden: tuple[int, ...]
    context: int
    dropout: float
    training: MaskTraining

    @classmethod
    def from_params(cls, p: Params) -> "MaskFCRecipe":
        g = p.sub("denoise.mask_fc")
        return cls(hidden=tuple(g.list("hidden", int, min_len=1, lo=1)), context=g.int("context", lo=0),
                   dropout=g.float("dropout", lo=0.0, hi=0.95), training=MaskTraining.from_group(g, p))

    def config(self, n_bins: int) -> dict:
        return {"kind": "mask_fc", "n_bins": n_bins, "hidden": list(self.hidden), "context": self.context,
                "dropout": self.dropout}

    def title(self) -> str:
        return f"FC IBM denoiser (±{self.context} frames)"


# checkpoint config "kind" → the mask model it rebuilds
MASK_MODELS = {"rnn": RNNMaskDenoiser, "mask_fc": FrameMaskFC}


def build_mask_model(config: dict) -> torch.nn.Module:
    c = dict(config)
    return MASK_MODELS[c.pop("kind")](**c)


# ============================================================================ features

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_features(ctx: StageContext) -> None:
    """STFT of the HW2 files, the training pair's validation and test tails held out →
    data/features/denoise/pair.pt."""
    sp = Spectral.from_params(ctx.params)
    val_seconds = ctx.params.float("denoise.frame.val_seconds", lo=0.0)
    test_seconds = ctx.params.float("denoise.frame.test_seconds", lo=0.0)
    ctx.use_data("denoise")
    data = load_denoise(raw_dir("denoise"))
    t0 = time.perf_counter()
    feats = pair_features(data, sp.n_fft, sp.hop, ctx.device, sp.batch_size, val_seconds, test_seconds)
    _sync(ctx.device)
    ctx.time(stft_seconds=round(time.perf_counter() - t0, 3))
    save_torch({"features": feats.to_dict(), "datasets": ctx.datasets}, ctx.features_path(PAIR_FEATURES))
    ctx.write_metrics({
        "device": ctx.device.type, "sr": feats.sr, "train_frames": int(feats.train_mag_x.shape[0]),
        "n_bins": feats.n_bins, "val_frames": int(feats.val.mix.shape[0]) if feats.val else 0,
        "val_seconds": feats.val_seconds, "test_seconds": feats.test_seconds,
        "pair_test_frames": int(feats.pair_test.mix.shape[0]) if feats.pair_test else 0,
        "test_01_clean_reference": feats.test_01.clean is not None,
        "test_01_frames": int(feats.test_01.mix.shape[0]), "test_02_frames": int(feats.test_02.mix.shape[0])})
    log.info("denoise features: %d training frames, %.2f s held out for validation, %.2f s for test",
             feats.train_mag_x.shape[0], feats.val_seconds, feats.test_seconds)


@dataclass
class TimitFeatures:
    sr: int
    n_fft: int
    hop: int
    tr: SplitFeatures
    v: SplitFeatures
    te: SplitFeatures

    def to_dict(self) -> dict:
        return {"sr": self.sr, "n_fft": self.n_fft, "hop": self.hop,
                **{s: getattr(self, s).to_dict() for s in TIMIT_SPLITS}}

    @classmethod
    def from_dict(cls, d: dict) -> "TimitFeatures":
        return cls(d["sr"], d["n_fft"], d["hop"], *(SplitFeatures.from_dict(d[s], f"timit {s}") for s in TIMIT_SPLITS))


def run_features_timit(ctx: StageContext) -> None:
    """STFT and IBMs of timit-homework tr/v/te → data/features/denoise/timit.pt (v keeps its waveforms)."""
    sp = Spectral.from_params(ctx.params)
    ctx.use_data("timit_denoise")
    d = load_timit(raw_dir("timit_denoise"))
    t0 = time.perf_counter()
    common = dict(n_fft=sp.n_fft, hop=sp.hop, device=ctx.device, batch_size=sp.batch_size)
    feats = TimitFeatures(
        sr=int(d.sr), n_fft=sp.n_fft, hop=sp.hop,
        tr=timit_split_features(d.tr_x, d.tr_s, d.tr_n, d.tr_names, keep_mix=False, **common),
        v=timit_split_features(d.v_x, d.v_s, d.v_n, d.v_names, keep_waves=True, **common),
        te=timit_split_features(d.te_x, None, None, d.te_names, **common))
    _sync(ctx.device)
    ctx.time(stft_seconds=round(time.perf_counter() - t0, 3))
    save_torch({"features": feats.to_dict(), "datasets": ctx.datasets}, ctx.features_path(TIMIT_FEATURES))
    metrics: dict = {"device": ctx.device.type, "sr": feats.sr}
    for name in TIMIT_SPLITS:
        split = getattr(feats, name)
        metrics[f"{name}_files"] = len(split.names)
        metrics[f"{name}_frames"] = int(split.frames.sum())
        if split.ibm is not None:
            metrics[f"{name}_ibm_ones_fraction"] = float(split.ibm.float().mean())
    ctx.write_metrics(metrics)
    log.info("timit features: %d/%d/%d files", metrics["tr_files"], metrics["v_files"], metrics["te_files"])


def _load_features(ctx: StageContext, name: str) -> dict:
    path = ctx.features_path(name)
    if not path.exists():
        raise UserError(f"{path}: not found; run `dvc repro` for the features stage that writes it")
    stored = load_torch(path)
    ctx.datasets.update(stored["datasets"])
    return stored["features"]


def load_pair(ctx: StageContext) -> PairFeatures:
    return PairFeatures.from_dict(_load_features(ctx, PAIR_FEATURES), str(ctx.features_path(PAIR_FEATURES)))


# ============================================================================ frame models (FC, 1-D CNN)

class FrameDenoiser:
    """A frame model plus what turns its output into magnitudes: input transform, output scale, mode.

    Training and inference share one convention: magnitudes are divided by `scale` (the RMS clean
    training magnitude) before `output_to_magnitude`, and its result is multiplied by `scale` after it.
    """

    def __init__(self, model: torch.nn.Module, transform: InputTransform, scale: float, predict: str):
        self.model, self.transform, self.scale, self.predict = model, transform, scale, predict

    def output_to_magnitude(self, out: torch.Tensor, rel_x: torch.Tensor) -> torch.Tensor:
        """Model output and noisy magnitude |X| / scale → clean-magnitude estimate |Ŝ| / scale."""
        return out * rel_x if self.predict == "mask" else out

    @torch.no_grad()
    def magnitudes(self, mag_x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        """(T, F) noisy magnitudes → (T, F) estimated clean magnitudes (absolute units)."""
        self.model.eval()
        outs = [self.output_to_magnitude(self.model(self.transform(m)), m / self.scale)
                for m in torch.split(mag_x, batch)]
        return torch.cat(outs) * self.scale

    def denoise(self, rec: Recording, n_fft: int, hop: int, device) -> torch.Tensor:
        """A recording → its denoised waveform (CPU), noisy phase."""
        mix = rec.mix.to(device)
        return reconstruct(mix.T, self.magnitudes(mix.abs()).T, rec.length, n_fft, hop).cpu()


def frame_selection(feats: PairFeatures) -> str:
    """How `train_frame` chooses its epoch on these features (for the metrics file)."""
    if feats.val is not None:
        if feats.pair_test is None:
            return (f"best epoch by SNR on the held-out last {feats.val_seconds:g} s of the training pair "
                    f"(never trained on); test_01 is not used for selection")
        return (f"best epoch by SNR on the held-out {feats.val_seconds:g} s of the training pair just before its "
                f"last {feats.test_seconds:g} s, the test tail (neither trained on); the test tail (pair_test) and test_01 "
                f"are not used for selection")
    return "final epoch (no validation tail: denoise.frame.val_seconds is 0)"


def train_frame(model: torch.nn.Module, feats: PairFeatures, r: FrameRecipe, device, generator: torch.Generator,
                desc: str) -> tuple[FrameDenoiser, EpochLog]:
    """Fit on the training columns; every epoch, the SNR of the denoised held-out tail; best epoch restored.

    Only the training magnitudes and the validation tail are read: the test recordings (pair_test, test_01,
    test_02) never steer training or selection. Without a tail the final epoch is kept.
    """
    mag_x = feats.train_mag_x.to(device)
    mag_s = feats.train_mag_s.to(device)
    transform = r.inputs.fit(mag_x)
    scale = float(mag_s.pow(2).mean().sqrt().clamp_min(1e-12))  # RMS clean magnitude: targets ~ unit scale
    den = FrameDenoiser(model.to(device), transform, scale, r.predict)
    batches = TensorBatches([transform(mag_x), mag_x / scale, mag_s / scale], r.batch_size, generator=generator)

    # Predicting silence costs mean((|S| / scale)²) = 1: the trivial predictor's loss.
    limit = r.divergence_multiple * float((mag_s / scale).pow(2).mean())

    def loss_fn(m, batch):
        x, rel_x, rel_s = batch
        return guard_loss(torch.nn.functional.mse_loss(den.output_to_magnitude(m(x), rel_x), rel_s), limit)

    evaluate = None
    if feats.val is not None:
        val = feats.val

        def evaluate(_m, _epoch) -> dict:
            rep = snr_report(val.clean, den.denoise(val, feats.n_fft, feats.hop, device), val.noisy)
            return {"val_snr_db": float(rep.snr[0]), "val_snri_db": float(rep.snri[0])}

    opt = torch.optim.Adam(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    history = fit(model, opt, batches, loss_fn, r.epochs, evaluate=evaluate,
                  select="val_snr_db" if evaluate else None, mode="max", desc=desc)
    return den, history


def usable(history: EpochLog, select: str | None) -> bool:
    """Whether the model `fit` left behind is one of its finite epochs: not diverged, or a finite selected
    epoch restored after a later divergence."""
    if not history.diverged:
        return True
    return select is not None and history.best is not None and math.isfinite(history.best.get(select, math.nan))


def clip_audio(x) -> tuple[np.ndarray, int]:
    """A waveform ready for a 16-bit wav: float32 within [-1, 32767/32768], and how many samples were clipped."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    n = int(np.count_nonzero((x > PCM16_MAX) | (x < -1.0)))
    return np.clip(x, -1.0, PCM16_MAX), n


def _snr_metrics(prefix: str, rec: Recording | None, est: torch.Tensor | None) -> dict:
    if rec is None or rec.clean is None:
        return {}
    if est is None:
        return {f"{prefix}_snr_db": None, f"{prefix}_snri_db": None, f"{prefix}_snr_in_db": None}
    rep = snr_report(rec.clean, est, rec.noisy)
    return {f"{prefix}_snr_db": float(rep.snr[0]), f"{prefix}_snri_db": float(rep.snri[0]),
            f"{prefix}_snr_in_db": float(rep.snr_in[0])}


def noisy_phase_oracles(rec: Recording, n_fft: int, hop: int) -> dict[str, torch.Tensor]:
    """Waveforms (CPU) of two oracle magnitudes resynthesised with the noisy phase, as every frame model is:
    - "oracle": the per-bin optimum max(0, |S| cos(∠S − ∠X)) (the phase-sensitive magnitude): no
      non-negative magnitude with the noisy phase gets a smaller error in any STFT bin, so it is the
      ceiling of this family of denoisers (up to how overlap-add spreads the errors);
    - "clean_magnitude": |S| itself, the target the frame models are trained towards.
    """
    clean = stft(rec.clean.to(rec.mix.device), n_fft, hop).T   # (T, F), as rec.mix
    cos = torch.cos(torch.angle(clean) - torch.angle(rec.mix))
    mags = {"oracle": (clean.abs() * cos).clamp_min(0.0), "clean_magnitude": clean.abs()}
    return {k: reconstruct(rec.mix.T, m.T, rec.length, n_fft, hop).cpu() for k, m in mags.items()}


def _oracle_metrics(feats: PairFeatures) -> dict:
    """SNR / SNRi of the noisy-phase oracles on every recording with a clean reference."""
    out = {}
    for name, rec in (("test_01", feats.test_01), ("pair_test", feats.pair_test), ("val", feats.val)):
        if rec is not None and rec.clean is not None:
            for kind, wave in noisy_phase_oracles(rec, feats.n_fft, feats.hop).items():
                rep = snr_report(rec.clean, wave, rec.noisy)
                out.update({f"{name}_snr_{kind}_db": float(rep.snr[0]), f"{name}_snri_{kind}_db": float(rep.snri[0])})
    return out


def _divergence(history: EpochLog) -> dict:
    return {"diverged": history.diverged, "diverged_at": history.diverged_at}


def run_frame(ctx: StageContext) -> None:
    """Train an FC or 1-D CNN frame denoiser (ctx.variant); denoise the tail, test_01 and test_02."""
    kind = ctx.variant
    ctx.step = kind
    r = FrameRecipe.from_params(ctx.params, kind)
    if r.predict == "mask" and r.out_act != "sigmoid":
        log.warning("denoise.%s: predict 'mask' with out_act %r allows gains above 1", kind, r.out_act)
    feats = load_pair(ctx)
    config = r.config(feats.n_bins)
    model = build_frame_model(config)
    n_params = sum(t.numel() for t in model.parameters())
    log.info("%s: %d parameters, %d training frames", kind, n_params, feats.train_mag_x.shape[0])

    den, history = train_frame(model, feats, r, ctx.device, ctx.generator, kind)
    ok = usable(history, "val_snr_db" if feats.val is not None else None)
    est = {name: den.denoise(rec, feats.n_fft, feats.hop, ctx.device) if ok else None
           for name, rec in (("val", feats.val), ("pair_test", feats.pair_test), ("test_01", feats.test_01),
                             ("test_02", feats.test_02)) if rec is not None}
    if ok and not all(bool(torch.isfinite(e).all()) for e in est.values()):
        ok, est = False, {name: None for name in est}
    clipped = 0
    with ctx.audio() as out:
        for name in ("pair_test", "test_01", "test_02"):
            if est.get(name) is not None:
                wav, n = clip_audio(est[name])
                clipped += n
                write_wav(out / f"{name}.wav", wav, feats.sr, atomic=False)
    ctx.save_checkpoint(ctx.model_path(f"{kind}.pt"), den.model, config,
                        extra={"transform": den.transform.state(), "scale": den.scale, "predict": r.predict,
                               **({} if ok else {"diverged": True})})
    last = history.rows[-1] if history.rows else {}
    oracle = _oracle_metrics(feats)
    metrics = {**_snr_metrics("test_01", feats.test_01, est["test_01"]),
               **_snr_metrics("pair_test", feats.pair_test, est.get("pair_test")),
               **_snr_metrics("val", feats.val, est.get("val")), **oracle,
               "best_epoch": history.best.get("epoch") if ok and history.best else None,
               "last_epoch_val_snr_db": last.get("val_snr_db"),
               "epochs_run": history.epochs_run, **_divergence(history), "parameters": n_params,
               "clipped_samples": clipped, "device": ctx.device.type}
    if kind == "cnn1d":
        metrics["flat_size"] = den.model.flat_size
    ctx.write_metrics(metrics, selection=frame_selection(feats))
    ctx.time(train_seconds=round(history.seconds, 2))
    panels = {"loss (MSE, magnitudes / scale)": ["train_loss"]}
    rows = history.rows
    if feats.val is not None:
        panels["held-out tail SNR (dB)"] = ["val_snr_db", "val_snri_db", "val_snr_oracle_db"]
        rows = [{**row, "val_snr_oracle_db": oracle["val_snr_oracle_db"]} for row in rows]
    with ctx.plots() as out:
        plot_history(rows, out, f"{TITLES[kind]}: training", ctx.source, panels=panels,
                     labels={"val_snr_oracle_db": "oracle |S| cos Δφ, noisy phase (ceiling)"},
                     diverged_at=history.diverged_at)
    if not ok:
        log.warning("%s diverged at epoch %s with no finite epoch to keep (recorded in its metrics; the model "
                    "is saved marked diverged); lower denoise.%s.lr", kind, history.diverged_at, kind)
        return
    if history.diverged:
        log.warning("%s diverged at epoch %s; kept its best earlier epoch (%s)", kind, history.diverged_at,
                    metrics["best_epoch"])
    log.info("%s: %s, best epoch %s (ceiling, the per-bin optimum with the noisy phase: %s)", kind,
             ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k.endswith(("snr_db", "snri_db"))
                       and v is not None), metrics["best_epoch"],
             ", ".join(f"{k} {v:.2f}" for k, v in oracle.items() if k.endswith("snri_oracle_db"))
             or "no clean reference")


# ============================================================================ recurrent IBM model

@dataclass
class PaddedSplit:
    """A split ready for the RNN: padded inputs (N, T, F), complex mixtures (N, F, T), masks, waves (N, L)."""
    names: list[str]
    frames: torch.Tensor
    lengths: torch.Tensor
    inputs: torch.Tensor
    mix: torch.Tensor
    ibm: torch.Tensor | None = None
    clean_wave: torch.Tensor | None = None
    mix_wave: torch.Tensor | None = None


def padded_split(split: SplitFeatures, transform: InputTransform, device) -> PaddedSplit:
    if split.mix is None:
        raise ValueError("padded_split needs a split stored with its complex mixtures (keep_mix)")
    waves = lambda w: split_waves(w, split.lengths).to(device) if w is not None else None  # noqa: E731
    return PaddedSplit(
        names=split.names, frames=split.frames, lengths=split.lengths,
        inputs=pad_frames(transform(split.mag_x), split.frames).to(device),
        mix=pad_frames(split.mix, split.frames).transpose(1, 2).to(device),
        ibm=(pad_frames(split.ibm.float(), split.frames).transpose(1, 2).to(device) if split.ibm is not None else None),
        clean_wave=waves(split.clean_wave), mix_wave=waves(split.mix_wave))


@torch.no_grad()
def predict_masks(model: torch.nn.Module, inputs: torch.Tensor, frames: torch.Tensor, batch: int,
                  binary: bool) -> torch.Tensor:
    """Padded inputs (N, T, F) → masks (N, F, T) in [0, 1] (or {0, 1}), zero on padded frames."""
    model.eval()
    outs = []
    for lo in range(0, len(inputs), batch):
        x, n = inputs[lo: lo + batch], frames[lo: lo + batch]
        m = torch.sigmoid(model(x, n))
        if binary:
            m = (m > 0.5).float()
        outs.append(m * frame_mask(n, x.shape[1], x.device)[:, :, None])
    return torch.cat(outs).transpose(1, 2)


def denoise_split(model: torch.nn.Module, split: PaddedSplit, n_fft: int, hop: int, batch: int,
                  binary: bool) -> torch.Tensor:
    masks = predict_masks(model, split.inputs, split.frames, batch, binary)
    return masked_istft_many(split.mix, masks, split.lengths, n_fft, hop)


MaskRecipe = RnnRecipe | MaskFCRecipe


def train_mask_model(model: torch.nn.Module, tr: SplitFeatures, v: SplitFeatures, r: MaskTraining, n_fft: int,
                     hop: int, device, generator: torch.Generator,
                     desc: str = "rnn") -> tuple[InputTransform, PaddedSplit, EpochLog]:
    """Fit a mask model (RNN or frame FC) on (truncated) training sequences, new mixtures of tr's sources every
    epoch when `r.remix`; every epoch mean/median SNR over `v`, the best epoch restored."""
    transform = r.inputs.fit(tr.mag_x)

    def pieces(flat: torch.Tensor) -> torch.Tensor:  # (ΣT, F) → padded training pieces on the device
        return pad_sequence(chunk_frames(flat, tr.frames, r.t_trunc)[0], batch_first=True).to(device)

    def tensors(mag_x: torch.Tensor, ibm: torch.Tensor) -> list[torch.Tensor]:
        x_pieces, lengths = chunk_frames(transform(mag_x), tr.frames, r.t_trunc)
        out = [pad_sequence(x_pieces, batch_first=True).to(device), pieces(ibm.float()), lengths.to(device)]
        try:
            weights = bin_weights(mag_x, r.loss_weight)
        except ValueError as exc:
            raise UserError(f"denoise: training mixtures: {exc}; use loss_weight: uniform or check the audio") from None
        return out + ([pieces(weights)] if weights is not None else [])

    if r.remix:  # every epoch new mixtures of tr's own speech and noise (the input transform stays tr's)
        if tr.mag_s is None or tr.mag_n is None:
            raise UserError("denoise: remix needs the training split's sources (|S|, |N|); rebuild the features")
        batches = EpochTensors(lambda: tensors(*remix_magnitudes(tr.mag_s, tr.mag_n, tr.frames, generator)),
                               r.batch_size, generator=generator)
    else:
        batches = TensorBatches(tensors(tr.mag_x, tr.ibm), r.batch_size, generator=generator)

    limit = r.divergence_multiple * math.log(2.0)  # a constant 0.5 mask costs ln 2 per bin

    def loss_fn(m, batch):
        xb, yb, lb, *wb = batch
        t = int(lb.max())  # trim the batch to its longest sequence
        if not wb:
            return guard_loss(masked_bce(m(xb[:, :t], lb), yb[:, :t], lb), limit)
        # weighted: a constant 0.5 mask costs ln 2 times this batch's mean weight, so the limit follows it
        w = wb[0][:, :t]
        return guard_loss(masked_bce(m(xb[:, :t], lb), yb[:, :t], lb, w), limit * masked_mean(w, lb))

    vp = padded_split(v, transform, device)
    model.to(device)

    def evaluate(m, _epoch) -> dict:
        est = denoise_split(m, vp, n_fft, hop, r.eval_batch, r.binary)
        rep = snr_report_many(vp.clean_wave, est, vp.mix_wave, vp.lengths)
        s = rep.summary("val_")
        return {"val_snr_db": s["val_snr_db"], "val_snr_median_db": s["val_snr_median_db"],
                "val_snri_db": s["val_snri_db"]}

    opt = torch.optim.Adam(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    history = fit(model, opt, batches, loss_fn, r.epochs, evaluate=evaluate, select="val_snr_db",
                  mode="max", desc=desc, grad_clip=r.grad_clip)
    return transform, vp, history


def run_rnn(ctx: StageContext) -> None:
    """Train the mask RNN on tr/, select on v/, denoise te/ into the course's submission folder and zip."""
    _run_mask_model(ctx, "rnn", RnnRecipe.from_params(ctx.params), submission=RNN_OUTPUTS)


def run_mask_fc(ctx: StageContext) -> None:
    """The RNN's baseline: a per-frame FC mask model trained on the same tr/, selected on the same v/."""
    _run_mask_model(ctx, "mask_fc", MaskFCRecipe.from_params(ctx.params), submission=None)


def _run_mask_model(ctx: StageContext, step: str, r: MaskRecipe, submission: Path | None) -> None:
    """Train an IBM mask model on tr/, keep its best epoch on v/, score it next to the oracle IBM; write te/
    denoised to `submission` (the course's folder and zip) when given, a v/ listening example, the model."""
    ctx.step = step
    feats = TimitFeatures.from_dict(_load_features(ctx, TIMIT_FEATURES))
    n_fft, hop = feats.n_fft, feats.hop
    config = r.config(int(feats.tr.mag_x.shape[1]))
    model = build_mask_model(config)
    n_params = sum(t.numel() for t in model.parameters())
    log.info("%s: %d parameters; %d train / %d v / %d te files", r.title(), n_params, len(feats.tr.names),
             len(feats.v.names), len(feats.te.names))

    t = r.training
    transform, vp, history = train_mask_model(model, feats.tr, feats.v, t, n_fft, hop, ctx.device, ctx.generator,
                                              desc=step)
    ok = usable(history, "val_snr_db")
    # The selected model on v, next to the unprocessed mixture and the oracle IBM (the ceiling of the task).
    oracle = masked_istft_many(vp.mix, vp.ibm, vp.lengths, n_fft, hop)
    rep_oracle = snr_report_many(vp.clean_wave, oracle, vp.mix_wave, vp.lengths)
    est_v = est_te = None
    if ok:
        est_v = denoise_split(model, vp, n_fft, hop, t.eval_batch, t.binary)
        if submission is not None:
            est_te = denoise_split(model, padded_split(feats.te, transform, ctx.device), n_fft, hop, t.eval_batch,
                                   t.binary).cpu()
        ok = all(bool(torch.isfinite(e).all()) for e in (est_v, est_te) if e is not None)
    if ok:
        summary = snr_report_many(vp.clean_wave, est_v, vp.mix_wave, vp.lengths).summary("v_")
    else:
        est_v = est_te = None
        summary = {**snr_report_many(vp.clean_wave, vp.mix_wave, vp.mix_wave, vp.lengths).summary("v_"),
                   "v_snr_db": None, "v_snr_median_db": None, "v_snri_db": None}
    clipped = _write_mask_outputs(ctx, feats, vp, est_v, est_te, submission)
    ctx.save_checkpoint(ctx.model_path(f"{step}.pt"), model, config,
                        extra={"transform": transform.state(), "mask": "binary" if t.binary else "soft",
                               **({} if ok else {"diverged": True})})
    last = history.rows[-1] if history.rows else {}
    metrics = {**summary, "v_snr_oracle_ibm_db": float(np.mean(rep_oracle.snr)),
               "best_epoch": history.best.get("epoch") if ok and history.best else None,
               "last_epoch_v_snr_db": last.get("val_snr_db"),
               "epochs_run": history.epochs_run, **_divergence(history), "parameters": n_params,
               "loss_weight": t.loss_weight, "remix": t.remix,
               "te_files": len(feats.te.names) if submission is not None else 0, "clipped_samples": clipped,
               "device": ctx.device.type}
    ctx.write_metrics(metrics, selection="best epoch by mean SNR over v/ (speakers disjoint from te/)")
    ctx.time(train_seconds=round(history.seconds, 2))
    rows = [{**row, "oracle_ibm_snr_db": metrics["v_snr_oracle_ibm_db"]} for row in history.rows]
    loss_panel = ", ".join(["loss (masked BCE"] + ([f"{t.loss_weight}-weighted"] if t.loss_weight != "uniform" else [])
                           + (["tr/ remixed every epoch"] if t.remix else [])) + ")"
    with ctx.plots() as out:
        plot_history(rows, out, f"{r.title()}: training", ctx.source,
                     panels={loss_panel: ["train_loss"],
                             "v/ SNR (dB)": ["val_snr_db", "val_snr_median_db", "val_snri_db", "oracle_ibm_snr_db"]},
                     labels={"val_snr_db": "mean", "val_snr_median_db": "median", "val_snri_db": "mean SNRi",
                             "oracle_ibm_snr_db": "oracle IBM (ceiling)"},
                     diverged_at=history.diverged_at)
    if not ok:
        log.warning("%s diverged at epoch %s with no finite epoch to keep (recorded in its metrics; the model is "
                    "saved marked diverged, nothing is denoised); lower denoise.%s.lr", step, history.diverged_at,
                    step)
        return
    if history.diverged:
        log.warning("%s diverged at epoch %s; kept its best earlier epoch (%s)", step, history.diverged_at,
                    metrics["best_epoch"])
    log.info("%s: v mean SNR %.2f dB (median %.2f, SNRi %.2f; oracle IBM %.2f), best epoch %s", step,
             metrics["v_snr_db"], metrics["v_snr_median_db"], metrics["v_snri_db"], metrics["v_snr_oracle_ibm_db"],
             metrics["best_epoch"])


def _write_mask_outputs(ctx: StageContext, feats: "TimitFeatures", vp: PaddedSplit, est_v: torch.Tensor | None,
                        est_te: torch.Tensor | None, submission: Path | None) -> int:
    """te/ denoised + te.zip into `submission` (empty when the model diverged); the first v/ file as a
    listening example. Returns how many te/ samples were clipped."""
    clipped = 0
    if submission is not None:
        te = feats.te
        with atomic_dir(submission) as tmp:
            (tmp / "te").mkdir()
            if est_te is not None:
                for i, name in enumerate(te.names):
                    wav, n = clip_audio(est_te[i, : int(te.lengths[i])])
                    clipped += n
                    write_wav(tmp / "te" / f"{name}.wav", wav, feats.sr, atomic=False)
            with atomic_path(tmp / "te.zip") as zpath:
                with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    for name in (te.names if est_te is not None else []):
                        # A fixed date and mode, not the file's: the same audio gives the same zip bytes.
                        info = zipfile.ZipInfo(f"te/{name}.wav", date_time=ZIP_DATE)
                        info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
                        zf.writestr(info, (tmp / "te" / f"{name}.wav").read_bytes())
    with ctx.audio() as out:
        if est_v is not None and len(vp.names):
            n = int(vp.lengths[0])
            for label, wave in (("noisy", vp.mix_wave[0]), ("denoised", est_v[0]), ("clean", vp.clean_wave[0])):
                write_wav(out / f"v_{vp.names[0]}_{label}.wav", clip_audio(wave[:n])[0], feats.sr, atomic=False)
    return clipped


# ============================================================================ comparison

# model → (dataset it is evaluated on, metrics prefix).
COMPARE = {"fc": ("denoise test_01", "test_01"), "cnn1d": ("denoise test_01", "test_01"),
           "mask_fc": ("timit v/ (mean)", "v"), "rnn": ("timit v/ (mean)", "v")}
# A frame model without a clean test_01 reference is compared on the pair's held-out test tail, and only
# without that on its validation tail (the data that chose its epoch: labelled so).
FRAME_FALLBACKS = (("denoise pair's test tail", "pair_test"), ("denoise training tail (validation)", "val"))


def _read_metrics(step: str) -> dict:
    path = METRICS_ROOT / "denoise" / f"{step}.json"
    if not path.exists():
        raise UserError(f"{path}: not found; run `dvc repro` for the stage that writes it first")
    return json.loads(path.read_text())


def run_compare(ctx: StageContext) -> None:
    """FC, 1-D CNN, FC mask and RNN side by side (SNR, SNRi), the RNN's gain over its FC mask baseline, a bar
    plot, test_01 spectrograms."""
    feats = load_pair(ctx)
    rows, loss_weights, remix = [], {}, {}
    for model, (dataset, prefix) in COMPARE.items():
        m = _read_metrics(model)
        if model in ("rnn", "mask_fc"):
            loss_weights[model] = m.get("loss_weight", "uniform")  # metrics from before the weights: plain BCE
            remix[model] = m.get("remix", False)  # metrics from before remixing: the fixed mixtures
        if model in FRAME_MODELS:
            dataset, prefix = next(((d, p) for d, p in ((dataset, prefix), *FRAME_FALLBACKS) if f"{p}_snr_db" in m),
                                   (dataset, prefix))
        if model in ("rnn", "mask_fc"):
            ctx.datasets.setdefault("timit_denoise", {"source": m["data_source"]})
        rows.append({"model": model, "dataset": dataset, "snr_db": m.get(f"{prefix}_snr_db"),
                     "snri_db": m.get(f"{prefix}_snri_db"), "snr_in_db": m.get(f"{prefix}_snr_in_db"),
                     "data_source": m["data_source"]})
    by_model = {r["model"]: r for r in rows}
    rnn, fc = by_model["rnn"]["snr_db"], by_model["mask_fc"]["snr_db"]
    same_loss, same_remix = (loss_weights["rnn"] == loss_weights["mask_fc"]), (remix["rnn"] == remix["mask_fc"])
    for same, key, values in ((same_loss, "loss_weight", loss_weights), (same_remix, "remix", remix)):
        if not same:
            log.warning("the RNN and the FC mask were trained with different %s (rnn: %s, mask_fc: %s): the gain "
                        "measures more than the memory; set denoise.rnn.%s and denoise.mask_fc.%s alike", key,
                        values["rnn"], values["mask_fc"], key, key)
    ctx.write_metrics({**{r["model"]: {k: r[k] for k in ("dataset", "snr_db", "snri_db", "snr_in_db")} for r in rows},
                       # the recurrent model's memory, measured: same files, target and selection as mask_fc
                       "rnn_gain_over_mask_fc_db": None if rnn is None or fc is None else rnn - fc,
                       "loss_weight": loss_weights, "same_loss_weight": same_loss,
                       "remix": remix, "same_remix": same_remix})

    n_fft, hop, sr = feats.n_fft, feats.hop, feats.sr
    specs = [("noisy test_01", feats.test_01.mix.abs().T)]
    if feats.test_01.clean is not None:
        specs.append(("clean test_01_s", stft(feats.test_01.clean, n_fft, hop).abs()))
    for model in FRAME_MODELS:
        wav = AUDIO_ROOT / "denoise" / model / "test_01.wav"
        if wav.exists():  # absent when that model diverged
            specs.append((f"{model} denoised", stft(torch.from_numpy(read_wav(wav, sr)), n_fft, hop).abs()))

    nan = lambda v: math.nan if v is None else v  # noqa: E731  (a diverged model: no bar)
    with ctx.plots() as out:
        write_table_csv(out / "snr.csv", rows)
        fig, ax = new_figure(size=(6.0, 3.6))
        ax = ax[0, 0]
        y = np.arange(len(rows))
        ax.barh(y - 0.2, [nan(r["snr_db"]) for r in rows], height=0.4, label="SNR")
        ax.barh(y + 0.2, [nan(r["snri_db"]) for r in rows], height=0.4, label="SNR improvement")
        ax.set_yticks(y, [f"{r['model']}\n{r['dataset']}" for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("dB")
        ax.legend()
        ax.set_title(titled("Denoisers: SNR and SNRi", ctx.source))
        save_figure(fig, out / "snr.png")

        fig, axes = new_figure(ncols=1, nrows=len(specs), size=(7.0, 2.0 * len(specs)), sharex=True)
        for a, (label, mag) in zip(axes[:, 0], specs):
            db = 20 * np.log10(mag.numpy() + 1e-6)
            a.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                     extent=(0, mag.shape[1] * hop / sr, 0, sr / 2000))
            a.set_ylabel("kHz")
            a.set_title(label, fontsize=8)
            a.grid(False)
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle(titled("test_01 spectrograms (dB)", ctx.datasets.get("denoise", {}).get("source", ctx.source)))
        save_figure(fig, out / "spectrograms.png")
    for r in rows:
        log.info("%-6s %-34s SNR %s dB  SNRi %s dB", r["model"], r["dataset"], r["snr_db"], r["snri_db"])
