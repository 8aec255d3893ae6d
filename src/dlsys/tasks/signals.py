"""Signal classifiers: Siamese speaker verification, log-mel keyword spotting, activity recognition.

Stages (params group `signals.*`, tests in tests/tasks/test_signals.py and tests/stages/test_signals_e2e.py):
- `signals_speaker_pairs` → `run_speaker_pairs`: STFT magnitudes of every utterance and the fixed test pairs.
- `signals_siamese` → `run_siamese`: GRU encoder, logit = ⟨e(a), e(b)⟩, BCE on balanced pairs
  (models/siamese.py; pairs in features/pairs.py; ROC/EER in evaluation/verification.py).
- `signals_kws_features` → `run_kws_features`: log-mel features of Speech Commands, 10 words + unknown +
  background (features/logmel.py, features/keywords.py).
- `signals_kws` → `run_kws`: the lecture's CNN (models/kws_cnn.py), class-weighted cross-entropy, lr drop,
  best epoch chosen on the speaker-disjoint validation list; optionally an ensemble of such CNNs, each at
  its own best epoch, averaging their probabilities (models/ensemble.py).
- `signals_har@{dense,cnn1d}` → `run_har`: the lecture's dense net or 1-D CNN (models/har.py) on WISDM
  windows, subject-disjoint test.

Model selection: the Siamese and HAR models are the final epoch's (their per-epoch test curves are drawn,
never used to choose); the Siamese decision threshold is the most accurate one on the pairs of validation
speakers carved from the training speakers; the KWS model (each member of an ensemble) is the best epoch on
validation clips. Every metrics file says so.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from dlsys.core.context import StageContext
from dlsys.core.errors import DataFormatError, UserError
from dlsys.core.outputs import load_torch, save_torch, write_table_csv
from dlsys.core.params import Params
from dlsys.data.audio.sets import load_speakers, load_speech_commands
from dlsys.data.har import ACTIVITIES, RAW_FILE, read_raw, subject_split, window
from dlsys.data.registry import raw_dir
from dlsys.data.wav import read_wav
from dlsys.evaluation.classification import accuracy, confusion_matrix, confusion_rows, per_class_accuracy, predict
from dlsys.evaluation.verification import accuracy_at, best_threshold, equal_error_rate, roc_auc, roc_curve
from dlsys.features.keywords import SPLITS, background_segments, mix_background, time_shift
from dlsys.features.logmel import LogMel, fit_length, logmel_batched
from dlsys.features.pairs import PairBatches, all_pairs
from dlsys.features.stft import stft
from dlsys.models.har import CNN1dHAR, build as build_har, n_params
from dlsys.models.ensemble import ProbabilityAverage
from dlsys.models.kws_cnn import KwsCNN, class_weights
from dlsys.models.siamese import Siamese, SpeakerEncoder
from dlsys.plots import new_figure, save_figure, titled
from dlsys.plots.confusion import plot_confusion
from dlsys.plots.history import join_on_epoch, plot_history
from dlsys.training import TensorBatches, fit

log = logging.getLogger("dlsys.signals")

SPEAKER_FEATURES = "speakers.pt"   # data/features/signals/<this>
KWS_FEATURES = "kws.pt"
UNKNOWN, BACKGROUND = "unknown", "background"
HAR_MODELS = ("dense", "cnn1d")
# Clips or windows per forward pass when evaluating: memory only (batch norm is in eval mode), kept at
# the values the numbers were first measured with so that float rounding, too, stays the same.
EVAL_BATCH = 4096
KWS_EVAL_BATCH = 1024


def _group(p: Params, name: str) -> Params:
    return p.sub("signals").sub(name)


def model_is_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def _divergence(hist) -> dict:
    """`diverged` always; the epoch only when it happened (keeps the usual metrics unchanged)."""
    return {"diverged": hist.diverged, **({"diverged_at_epoch": hist.diverged_at} if hist.diverged else {})}


def _warn_diverged(ctx: StageContext, hist) -> None:
    if hist.diverged:
        log.warning("%s diverged at epoch %d (recorded in its metrics); lower the learning rate", ctx.stage,
                    hist.diverged_at)


# ============================================================================ speaker verification

@dataclass(frozen=True)
class SpeakerFeatures:
    """params `signals.speaker` read by signals_speaker_pairs."""
    n_fft: int
    hop: int
    stft_batch: int
    pairs_per_speaker: int
    test_pair_seed: int

    @classmethod
    def from_params(cls, p: Params) -> "SpeakerFeatures":
        s = _group(p, "speaker")
        return cls(n_fft=s.int("n_fft", lo=16), hop=s.int("hop", lo=1), stft_batch=s.int("stft_batch", lo=1),
                   pairs_per_speaker=s.int("pairs_per_speaker", lo=1), test_pair_seed=s.seed("test_pair_seed"))


@dataclass(frozen=True)
class SiameseRecipe:
    """params `signals.speaker` read by signals_siamese."""
    pairs_per_speaker: int
    hidden: int
    layers: int
    embedding: int
    dropout: float
    lr: float
    epochs: int
    grad_clip: float
    n_val_speakers: int = 0

    @classmethod
    def from_params(cls, p: Params) -> "SiameseRecipe":
        s = _group(p, "speaker")
        return cls(pairs_per_speaker=s.int("pairs_per_speaker", lo=1), hidden=s.int("hidden", lo=1),
                   layers=s.int("layers", lo=1), embedding=s.int("embedding", lo=1),
                   dropout=s.float("dropout", lo=0, hi=1), lr=s.float("lr", gt=0), epochs=s.int("epochs", lo=1),
                   grad_clip=s.float("grad_clip", lo=0), n_val_speakers=s.int("n_val_speakers", lo=0))


@dataclass(frozen=True)
class SpeakerSplit:
    """Training rows and the validation speakers carved from them (speaker-disjoint, seeded)."""
    train: torch.Tensor
    val: torch.Tensor | None
    val_first: torch.Tensor | None
    val_second: torch.Tensor | None
    val_label: torch.Tensor | None
    val_speakers: list[int]


def carve_val_speakers(train: torch.Tensor, per_speaker: int, n_val: int, pairs_per_speaker: int,
                       seed: int) -> SpeakerSplit:
    """Hold `n_val` whole training speakers out (a seeded draw) with their balanced pairs, built as the test
    pairs are. n_val 0: every speaker trains and there are no validation pairs."""
    n_spk = len(train) // per_speaker
    if n_val == 0:
        return SpeakerSplit(train, None, None, None, None, [])
    if not 2 <= n_val <= n_spk - 2:
        raise UserError(f"params.yaml: 'signals.speaker.n_val_speakers' is {n_val}; with {n_spk} training speakers "
                        f"it must be 0 or between 2 and {n_spk - 2} (pairs need two speakers on each side)")
    rng = np.random.default_rng(seed)
    val_spk = np.sort(rng.permutation(n_spk)[:n_val])
    is_val = np.zeros(n_spk, bool)
    is_val[val_spk] = True
    rows = np.repeat(is_val, per_speaker)
    pairs = all_pairs(n_val, per_speaker, pairs_per_speaker, rng)
    dev = train.device
    return SpeakerSplit(train[torch.from_numpy(~rows).to(dev)], train[torch.from_numpy(rows).to(dev)],
                        torch.as_tensor(pairs.first, device=dev), torch.as_tensor(pairs.second, device=dev),
                        torch.as_tensor(pairs.label, device=dev, dtype=torch.float32), val_spk.tolist())


def stft_magnitudes(x: np.ndarray, n_fft: int, hop: int, device: torch.device, batch: int) -> torch.Tensor:
    """|STFT| (N, n_fft//2 + 1, frames) of every row, computed in device batches; CPU float32 result."""
    t = torch.from_numpy(x)
    return torch.cat([stft(t[i:i + batch].to(device), n_fft, hop).abs().cpu() for i in range(0, len(t), batch)])


def run_speaker_pairs(ctx: StageContext) -> None:
    r = SpeakerFeatures.from_params(ctx.params)
    ctx.use_data("speakers")
    data = load_speakers(raw_dir("speakers"))
    u = data.utterances_per_speaker
    train = stft_magnitudes(data.train, r.n_fft, r.hop, ctx.device, r.stft_batch)
    test = stft_magnitudes(data.test, r.n_fft, r.hop, ctx.device, r.stft_batch)
    # Test pairs: built like the training pairs, from the (unseen) test speakers, with their own fixed seed.
    pairs = all_pairs(len(data.test) // u, u, r.pairs_per_speaker, np.random.default_rng(r.test_pair_seed))
    save_torch({"train": train, "test": test, "utterances_per_speaker": u, "source": data.source,
                "datasets": ctx.datasets, "test_first": torch.from_numpy(pairs.first),
                "test_second": torch.from_numpy(pairs.second), "test_label": torch.from_numpy(pairs.label)},
               ctx.features_path(SPEAKER_FEATURES))
    log.info("train %s, test %s magnitudes; %d test pairs (%d same-speaker)", tuple(train.shape),
             tuple(test.shape), len(pairs), int(pairs.label.sum()))


def _features(ctx: StageContext, name: str) -> dict:
    """A features file of this family; its data provenance becomes the stage's."""
    path = ctx.features_path(name)
    if not path.exists():
        raise UserError(f"{path}: not found; run `dvc repro` for the stage that writes it")
    feats = load_torch(path)
    if not isinstance(feats, dict) or "datasets" not in feats:
        raise UserError(f"{path}: written by an older version (no data provenance); re-create it with "
                        f"`dvc repro` of the stage that writes it")
    ctx.datasets.update(feats["datasets"])
    return feats


def verification_scores(encoder: torch.nn.Module, utterances: torch.Tensor, first: torch.Tensor,
                        second: torch.Tensor) -> torch.Tensor:
    """Pair logits, encoding each utterance once."""
    emb = encoder(utterances)
    return (emb[first] * emb[second]).sum(1)


def verification_metrics(logits: torch.Tensor, label: torch.Tensor) -> dict:
    """Accuracy at p = 0.5, EER and ROC AUC; None for all when the scores are not finite (a diverged model)."""
    if not bool(torch.isfinite(logits).all()):
        return {"test_accuracy": None, "eer": None, "roc_auc": None}
    prob, y = torch.sigmoid(logits).cpu().numpy(), label.cpu().numpy()
    return {"test_accuracy": accuracy_at(prob, y, 0.5), "eer": equal_error_rate(prob, y), "roc_auc": roc_auc(prob, y)}


def decision_threshold(encoder: torch.nn.Module, split: SpeakerSplit) -> dict:
    """The accept threshold: the most accurate cut on the validation speakers' pair logits (logits, not
    probabilities: float32 sigmoid saturates to 1 above a logit of about 17 and would tie confident pairs),
    or the course's p = 0.5 (logit 0) without them or when their scores are not finite. `threshold` is the
    same cut as a probability, for reading."""
    course = {"threshold_logit": 0.0, "threshold": 0.5, "val_accuracy": None, "val_eer": None}
    if split.val is None:
        return course
    logits = verification_scores(encoder, split.val, split.val_first, split.val_second)
    if not bool(torch.isfinite(logits).all()):
        return course
    scores, y = logits.double().cpu().numpy(), split.val_label.cpu().numpy()
    th, acc = best_threshold(scores, y)
    return {"threshold_logit": th, "threshold": 1.0 / (1.0 + math.exp(-th)), "val_accuracy": acc,
            "val_eer": equal_error_rate(scores, y)}


def run_siamese(ctx: StageContext) -> None:
    cpu0 = time.process_time()
    r = SiameseRecipe.from_params(ctx.params)
    feats = _features(ctx, SPEAKER_FEATURES)
    device, u = ctx.device, int(feats["utterances_per_speaker"])
    train, test = feats["train"].to(device), feats["test"].to(device)
    first, second = feats["test_first"].to(device), feats["test_second"].to(device)
    label = feats["test_label"].to(device)
    split = carve_val_speakers(train, u, r.n_val_speakers, r.pairs_per_speaker, ctx.seed)
    train = split.train

    config = {"n_bins": train.shape[1], "hidden": r.hidden, "layers": r.layers, "embedding": r.embedding,
              "dropout": r.dropout}
    encoder = SpeakerEncoder(**config)
    encoder.set_normalisation(train.cpu())
    model = Siamese(encoder).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    bce = torch.nn.BCEWithLogitsLoss()
    batches = PairBatches(len(train) // u, u, r.pairs_per_speaker, seed=ctx.seed, device=device)

    def loss_fn(m, batch):
        return bce(m.score_pairs(train, batch[0], batch[1]), batch[2])

    def evaluate(m, _epoch) -> dict:
        # Drawn as a curve only: the model kept is the final epoch's, whatever these numbers say.
        logits = verification_scores(m.encoder, test, first, second)
        v = verification_metrics(logits, label)
        row = {"test_loss": float(bce(logits, label)), "test_accuracy": v["test_accuracy"], "test_eer": v["eer"]}
        if split.val is not None:
            row["val_eer"] = decision_threshold(m.encoder, split)["val_eer"]
        return row

    hist = fit(model, opt, batches, loss_fn, r.epochs, evaluate=evaluate, desc="siamese", grad_clip=r.grad_clip)
    model.eval()
    with torch.no_grad():
        logits = verification_scores(model.encoder, test, first, second)
        decision = decision_threshold(model.encoder, split)
    scores = verification_metrics(logits, label)
    scores["test_accuracy_at_0_5"] = scores["test_accuracy"]
    if scores["test_accuracy"] is not None:
        scores["test_accuracy"] = accuracy_at(logits.double().cpu().numpy(), label.cpu().numpy(),
                                              decision["threshold_logit"])
    metrics = {**scores, **decision, "test_pairs": int(len(label)),
               "train_speakers": len(train) // u, "val_speakers": len(split.val_speakers),
               "test_speakers": len(test) // u, "epochs_run": hist.epochs_run, **_divergence(hist),
               "device": device.type}
    ctx.save_checkpoint(ctx.model_path("siamese.pt"), model, config,
                        extra={"threshold_logit": decision["threshold_logit"], "val_speakers": split.val_speakers})
    with ctx.plots() as out:
        plot_history(hist.rows, out, "Siamese GRU speaker verification: training", ctx.source,
                     panels={"loss (BCE)": ["train_loss", "test_loss"],
                             "accuracy at p = 0.5, equal error rate (%)": ["test_accuracy", "test_eer", "val_eer"]},
                     diverged_at=hist.diverged_at)
        plot_verification(logits, label, metrics, out, ctx.source)
    selection = "final epoch (the per-epoch test curve is drawn, not used to choose); "
    selection += (f"decision threshold: the most accurate on the pairs of {len(split.val_speakers)} validation "
                  f"speakers carved from the training speakers (never trained on)" if split.val is not None
                  else "decision threshold: p = 0.5 (no validation speakers)")
    ctx.write_metrics(metrics, selection=selection)
    ctx.time(train_seconds=round(hist.seconds, 1), cpu_seconds=round(time.process_time() - cpu0, 1))
    _warn_diverged(ctx, hist)
    if metrics["test_accuracy"] is not None:
        log.info("siamese: test accuracy %.3f at p >= %.3f (%.3f at 0.5), EER %.3f, AUC %.3f",
                 metrics["test_accuracy"], metrics["threshold"], metrics["test_accuracy_at_0_5"], metrics["eer"],
                 metrics["roc_auc"])


def plot_verification(logits: torch.Tensor, label: torch.Tensor, metrics: dict, out, source: str) -> None:
    """roc.csv and verification.png: the ROC curve and the score histograms of both pair kinds."""
    fig, axes = new_figure(ncols=2, size=(10, 3.8))
    roc_ax, hist_ax = axes[0]
    if metrics["test_accuracy"] is None:
        write_table_csv(out / "roc.csv", [])
        for ax in (roc_ax, hist_ax):
            ax.text(0.5, 0.5, "model diverged: no finite scores", ha="center", va="center", transform=ax.transAxes)
        title = "Siamese GRU speaker verification: diverged"
    else:
        prob, y = torch.sigmoid(logits).cpu().numpy(), label.cpu().numpy()
        fpr, tpr, _ = roc_curve(prob, y)
        write_table_csv(out / "roc.csv", [{"fpr": a, "tpr": b} for a, b in zip(fpr.tolist(), tpr.tolist())])
        roc_ax.plot(fpr, tpr), roc_ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        roc_ax.set_title(f"ROC (AUC {metrics['roc_auc']:.3f}, EER {metrics['eer']:.3f})")
        bins = np.linspace(0, 1, 31)
        hist_ax.hist(prob[y == 1], bins=bins, alpha=0.6, label="same speaker")
        hist_ax.hist(prob[y == 0], bins=bins, alpha=0.6, label="different speakers")
        hist_ax.axvline(metrics["threshold"], color="k", lw=0.8, label="decision threshold")
        hist_ax.legend()
        title = f"Siamese GRU speaker verification: test accuracy {metrics['test_accuracy']:.3f}"
    roc_ax.set_xlabel("false acceptance rate"), roc_ax.set_ylabel("true acceptance rate")
    hist_ax.set_xlabel("sigmoid score (test pairs)"), hist_ax.set_ylabel("number of pairs")
    fig.suptitle(titled(title, source))
    save_figure(fig, out / "verification.png")


# ============================================================================ keyword spotting

@dataclass(frozen=True)
class KwsFeatures:
    """params `signals.kws` read by signals_kws_features."""
    commands: tuple[str, ...]
    background_fraction: float
    background_gain: tuple[float, float]
    sr: int
    segment_seconds: float
    frame_ms: float
    hop_ms: float
    n_fft: int
    n_mels: int
    fmin: float
    fmax: float
    eps: float

    @classmethod
    def from_params(cls, p: Params) -> "KwsFeatures":
        k = _group(p, "kws")
        f = k.sub("features")
        gain = k.list("background_gain", item_type=(int, float), min_len=2, lo=0)
        if len(gain) != 2 or not 0 < gain[0] <= gain[1]:
            raise UserError(f"params.yaml: 'signals.kws.background_gain' must be [low, high] with "
                            f"0 < low <= high, got {gain!r}")
        return cls(commands=tuple(k.list("commands", item_type=str, min_len=1)),
                   background_fraction=k.float("background_fraction", lo=0),
                   background_gain=(float(gain[0]), float(gain[1])), sr=f.int("sr", lo=1000),
                   segment_seconds=f.float("segment_seconds", lo=0.1), frame_ms=f.float("frame_ms", lo=1),
                   hop_ms=f.float("hop_ms", lo=1), n_fft=f.int("n_fft", lo=16), n_mels=f.int("n_mels", lo=1),
                   fmin=f.float("fmin", lo=0), fmax=f.float("fmax", lo=0), eps=f.float("eps", lo=0))

    @property
    def classes(self) -> list[str]:
        return [*self.commands, UNKNOWN, BACKGROUND]

    @property
    def length(self) -> int:
        return int(round(self.segment_seconds * self.sr))

    def extractor(self) -> LogMel:
        return LogMel(sr=self.sr, n_fft=self.n_fft, frame=int(round(self.frame_ms * self.sr / 1000)),
                      hop=int(round(self.hop_ms * self.sr / 1000)), n_mels=self.n_mels, fmin=self.fmin,
                      fmax=self.fmax, eps=self.eps)


@dataclass(frozen=True)
class KwsRecipe:
    """params `signals.kws` read by signals_kws."""
    filters: tuple[int, ...]
    pooled_blocks: int
    dropout: float
    lr: float
    batch_size: int
    epochs: int
    lr_drop_epoch: int
    lr_drop_factor: float
    shift_frames: int
    background_mix: float
    ensemble: int

    @classmethod
    def from_params(cls, p: Params) -> "KwsRecipe":
        k = _group(p, "kws")
        t = k.sub("train")
        return cls(filters=tuple(k.list("filters", item_type=int, min_len=1, lo=1)),
                   pooled_blocks=k.int("pooled_blocks", lo=0), dropout=k.float("dropout", lo=0, hi=1),
                   lr=t.float("lr", gt=0), batch_size=t.int("batch_size", lo=1), epochs=t.int("epochs", lo=1),
                   lr_drop_epoch=t.int("lr_drop_epoch", lo=1), lr_drop_factor=t.float("lr_drop_factor", lo=0),
                   shift_frames=t.int("shift_frames", lo=0), background_mix=t.float("background_mix", lo=0),
                   ensemble=t.int("ensemble", lo=1))


def run_kws_features(ctx: StageContext) -> None:
    r = KwsFeatures.from_params(ctx.params)
    ctx.use_data("speech_commands")
    rng = np.random.default_rng(ctx.seed)
    sc = load_speech_commands(raw_dir("speech_commands"))
    missing = [c for c in r.commands if c not in set(sc.words)]
    if missing:
        raise DataFormatError(f"{sc.root}: no clips for command word(s) {', '.join(missing)} "
                              f"(params signals.kws.commands)")
    if not sc.background:
        raise DataFormatError(f"{sc.root}/_background_noise_: no background noise files")
    index = {w: i for i, w in enumerate(r.commands)}
    audio = np.stack([fit_length(read_wav(sc.root / c, r.sr), r.length) for c in sc.clips])
    labels = np.array([index.get(w, len(r.commands)) for w in sc.words], np.int64)
    split = np.array(sc.splits)
    noises = [read_wav(sc.root / b, r.sr) for b in sc.background]
    counts = {s: int(round(r.background_fraction * (split == s).sum())) for s in SPLITS}
    bg = background_segments(noises, counts, r.length, r.background_gain, rng)

    extractor = r.extractor()
    # log_eps: the features' log floor, which undoing the log (mix_background) needs
    data = {"classes": r.classes, "source": sc.source, "datasets": ctx.datasets, "log_eps": r.eps}
    for s in SPLITS:
        x = np.concatenate([audio[split == s], bg[s]])
        y = np.concatenate([labels[split == s], np.full(len(bg[s]), len(r.classes) - 1, np.int64)])
        data[s] = {"x": logmel_batched(x, extractor, ctx.device), "y": torch.from_numpy(y)}
        log.info("%s: %d clips (%d background), %s features", s, len(y), len(bg[s]), tuple(data[s]["x"].shape))
    save_torch(data, ctx.features_path(KWS_FEATURES))


def _safe_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy, or NaN when the model's outputs are not finite (never chosen as the best epoch)."""
    logits = _logits(model, x, batch=KWS_EVAL_BATCH)
    return accuracy(logits, y) if bool(torch.isfinite(logits).all()) else math.nan


@torch.no_grad()
def _logits(model: torch.nn.Module, x: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def classification_report(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: list[str],
                          out, title: str, source: str) -> dict:
    """Test accuracy and per-class accuracy, confusion.csv and confusion.png; None when the model diverged."""
    if not model_is_finite(model):
        write_table_csv(out / "confusion.csv", [])
        return {"test_accuracy": None, "per_class_accuracy": None}
    pred = predict(model, x)
    actual = y.cpu().numpy()
    cm = confusion_matrix(actual, pred.cpu().numpy(), len(classes))
    acc = accuracy(pred, y)
    write_table_csv(out / "confusion.csv", confusion_rows(actual, pred.cpu().numpy(), classes))
    plot_confusion(cm, classes, titled(f"{title} (accuracy {acc:.3f})", source), out / "confusion.png")
    return {"test_accuracy": acc, "per_class_accuracy": per_class_accuracy(cm, classes)}


def run_kws(ctx: StageContext) -> None:
    r = KwsRecipe.from_params(ctx.params)
    d = _features(ctx, KWS_FEATURES)
    classes, device = list(d["classes"]), ctx.device
    xtr, ytr = d["train"]["x"].to(device), d["train"]["y"].to(device)
    xva, yva = d["validation"]["x"].to(device), d["validation"]["y"].to(device)
    xte, yte = d["testing"]["x"].to(device), d["testing"]["y"].to(device)

    config = {"n_classes": len(classes), "n_mels": xtr.shape[1], "filters": list(r.filters),
              "pooled_blocks": r.pooled_blocks, "dropout": r.dropout}
    weights = class_weights(ytr.cpu(), len(classes)).to(device)
    ce = torch.nn.CrossEntropyLoss(weight=weights)

    # the training split's background clips: noise to mix into training words (never validation or test noise)
    background, eps = xtr[:0], 0.0
    if r.background_mix > 0:
        if "log_eps" not in d:
            raise UserError(f"{ctx.features_path(KWS_FEATURES)}: written by an older version (no log_eps, which "
                            f"signals.kws.train.background_mix needs); re-create it with "
                            f"`dvc repro signals_kws_features`")
        background = xtr[ytr == classes.index(BACKGROUND)] if BACKGROUND in classes else xtr[:0]
        if len(background) == 0:
            raise UserError("signals.kws.train.background_mix is set, but the training split has no background "
                            "clips to mix in; raise signals.kws.background_fraction above 0 or set the mix to 0")
        eps = float(d["log_eps"])

    def loss_fn(m, batch):
        x, y = batch
        x = mix_background(x, background, r.background_mix, eps, ctx.generator)
        return ce(m(time_shift(x, r.shift_frames, ctx.generator)), y)

    # Ensemble members differ only in their initial weights and in the draws (batch order, shifts, mixes)
    # they take, one after the other, from the stage's generators; each keeps its best validation epoch.
    members, hists = [], []
    for i in range(r.ensemble):
        model = KwsCNN(**{**config, "filters": r.filters}).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=r.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=r.lr_drop_epoch, gamma=r.lr_drop_factor)
        hists.append(fit(model, opt, TensorBatches([xtr, ytr], r.batch_size, generator=ctx.generator), loss_fn,
                         r.epochs, evaluate=lambda m, _epoch: {"val_accuracy": _safe_accuracy(m, xva, yva)},
                         scheduler=sched, select="val_accuracy", mode="max",
                         desc="kws" if r.ensemble == 1 else f"kws {i + 1}/{r.ensemble}"))
        members.append(model)
    _report_kws(ctx, members, hists, config, classes, weights, len(ytr), (xva, yva), (xte, yte))


def _report_kws(ctx: StageContext, members: list, hists: list, config: dict, classes: list[str],
                weights: torch.Tensor, n_train: int, val: tuple, test_set: tuple) -> None:
    """Plots, metrics and checkpoint of one CNN (its best validation epoch) or of an ensemble of them."""
    (xva, yva), (xte, yte) = val, test_set
    single = len(members) == 1
    chosen = [_best_val(h) for h in hists]
    if single:
        model, rows, best_val = members[0], hists[0].rows, chosen[0][0]
        panels = {"weighted cross-entropy (train)": ["train_loss"], "accuracy (%)": ["val_accuracy"]}
        labels = None
    else:
        kept = [m for m in members if model_is_finite(m)]  # a member diverged with no finite epoch is left out
        model = ProbabilityAverage(kept or members)
        best_val = _finite(_safe_accuracy(model, xva, yva))
        rows, panels, labels = _member_rows(hists)
        config = {"members": len(kept or members), "member": config}
    with ctx.plots() as out:
        plot_history(rows, out, "KWS CNN training" if single else f"KWS CNN training ({len(members)} members)",
                     ctx.source, panels=panels, labels=labels, diverged_at=hists[0].diverged_at if single else None)
        test = classification_report(model, xte, yte, classes, out, "KWS test confusion", ctx.source)
    metrics = {
        **test,
        "best_val_accuracy": best_val,
        "best_epoch": chosen[0][1] if single else [epoch for _, epoch in chosen],
        "class_weights": dict(zip(classes, weights.cpu().tolist())),
        "train_clips": n_train, "validation_clips": len(yva), "test_clips": len(yte),
        "epochs_run": hists[0].epochs_run if single else [h.epochs_run for h in hists],
        **(_divergence(hists[0]) if single else _members_divergence(hists)),
        "ensemble_members": len(members),
    }
    selection = "best val_accuracy on the validation list (speakers disjoint from training and test)"
    if not single:
        member_test = [accuracy(predict(m, xte), yte) if model_is_finite(m) else None for m in members]
        metrics["members"] = [{"best_val_accuracy": v, "best_epoch": e, "test_accuracy": t, "diverged": h.diverged,
                               "averaged": t is not None}
                              for (v, e), t, h in zip(chosen, member_test, hists)]
        scored = [t for t in member_test if t is not None]
        metrics["ensemble_members_averaged"] = len(scored)
        metrics["member_test_accuracy_mean"] = sum(scored) / len(scored) if scored else None
        selection += (f", for each of the {len(members)} ensemble members (one that diverged keeps its best finite "
                      f"epoch; one with none is left out); the softmax probabilities of the "
                      f"{len(scored)} averaged members are averaged (best_val_accuracy: the ensemble's)")
    ctx.save_checkpoint(ctx.model_path("kws_cnn.pt"), model, config, extra={"classes": classes})
    ctx.write_metrics(metrics, selection=selection)
    ctx.time(train_seconds=round(sum(h.seconds for h in hists), 1))
    for h in hists:
        _warn_diverged(ctx, h)
    if test["test_accuracy"] is not None:
        log.info("kws: test accuracy %.3f%s", test["test_accuracy"], "" if single else
                 f" (ensemble of {len(members)}; its members alone: mean {metrics['member_test_accuracy_mean']:.3f})")


def _best_val(hist) -> tuple[float | None, int | None]:
    """(validation accuracy, epoch) of the epoch the run kept; (None, None) when none was finite."""
    best = hist.best if hist.best and _finite(hist.best.get("val_accuracy")) is not None else None
    return (best["val_accuracy"], best.get("epoch")) if best else (None, None)


def _member_rows(hists: list) -> tuple[list[dict], dict, dict]:
    """Every member's curves side by side, one row per epoch (columns suffixed by the member's number)."""
    n = range(1, len(hists) + 1)
    rows = join_on_epoch({str(i): h.rows for i, h in zip(n, hists)}, ("train_loss", "val_accuracy"),
                         column_name=lambda member, column: f"{column}_{member}")
    panels = {"weighted cross-entropy (train)": [f"train_loss_{i}" for i in n],
              "accuracy (%)": [f"val_accuracy_{i}" for i in n]}
    labels = {f"{k}_{i}": f"member {i}" for k in ("train_loss", "val_accuracy") for i in n}
    return rows, panels, labels


def _members_divergence(hists: list) -> dict:
    diverged = [i for i, h in enumerate(hists, start=1) if h.diverged]
    return {"diverged": bool(diverged), **({"diverged_members": diverged} if diverged else {})}


def _finite(v):
    return v if v is not None and math.isfinite(v) else None


# ============================================================================ activity recognition

@dataclass(frozen=True)
class HarRecipe:
    """params `signals.har`."""
    window: int
    step: int
    first_test_subject: int
    epochs: int
    batch_size: int
    lr: float
    dropout: float

    @classmethod
    def from_params(cls, p: Params) -> "HarRecipe":
        h = _group(p, "har")
        return cls(window=h.int("window", lo=2), step=h.int("step", lo=1),
                   first_test_subject=h.int("first_test_subject", lo=1), epochs=h.int("epochs", lo=1),
                   batch_size=h.int("batch_size", lo=1), lr=h.float("lr", gt=0),
                   dropout=h.float("dropout", lo=0, hi=1))


@dataclass
class HarData:
    xtr: torch.Tensor
    ytr: torch.Tensor
    xte: torch.Tensor
    yte: torch.Tensor
    mean: np.ndarray
    std: np.ndarray
    channels: int


def load_har(r: HarRecipe, device: torch.device) -> HarData:
    """WISDM windows, subject-disjoint split, each axis standardised with training statistics only."""
    X, y, subj = window(read_raw(raw_dir("har") / RAW_FILE), r.window, r.step)
    train, test = subject_split(subj, r.first_test_subject)
    if not train.any() or not test.any():
        raise UserError(f"params.yaml: 'signals.har.first_test_subject' = {r.first_test_subject} leaves an "
                        f"empty train or test split (subjects {subj.min()}..{subj.max()})")
    mean, std = X[train].mean((0, 1)), X[train].std((0, 1)) + 1e-6
    Xn = ((X - mean) / std).astype(np.float32)
    log.info("%d train windows (%d subjects), %d test windows (%d subjects)", int(train.sum()),
             len(np.unique(subj[train])), int(test.sum()), len(np.unique(subj[test])))
    return HarData(torch.from_numpy(Xn[train]).to(device), torch.from_numpy(y[train]).to(device),
                   torch.from_numpy(Xn[test]).to(device), torch.from_numpy(y[test]).to(device), mean, std, X.shape[2])


def run_har(ctx: StageContext) -> None:
    kind = ctx.variant
    r = HarRecipe.from_params(ctx.params)
    if kind == "cnn1d" and r.window < CNN1dHAR.min_length():
        raise UserError(f"params.yaml: 'signals.har.window' = {r.window} is shorter than the 1-D CNN's "
                        f"receptive field ({CNN1dHAR.min_length()} samples)")
    ctx.use_data("har")
    d = load_har(r, ctx.device)
    config = {"kind": kind, "length": r.window, "channels": d.channels, "n_classes": len(ACTIVITIES),
              "dropout": r.dropout}
    model = build_har(**config).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    ce = torch.nn.CrossEntropyLoss()

    def evaluate(m, _epoch) -> dict:
        # Drawn as a curve only: the model kept is the final epoch's.
        logits = _logits(m, d.xte)
        finite = bool(torch.isfinite(logits).all())
        return {"test_loss": float(ce(logits, d.yte)), "test_accuracy": accuracy(logits, d.yte) if finite else None}

    hist = fit(model, opt, TensorBatches([d.xtr, d.ytr], r.batch_size, generator=ctx.generator),
               lambda m, b: ce(m(b[0]), b[1]), r.epochs, evaluate=evaluate, desc=f"har {kind}")
    size = n_params(model)
    with ctx.plots() as out:
        plot_history(hist.rows, out, f"HAR {kind} ({size:,} parameters)", ctx.source,
                     panels={"cross-entropy": ["train_loss", "test_loss"], "accuracy (%)": ["test_accuracy"]},
                     diverged_at=hist.diverged_at)
        test = classification_report(model, d.xte, d.yte, list(ACTIVITIES), out, f"HAR {kind}: test confusion",
                                     ctx.source)
    metrics = {"model": kind, "accuracy": test["test_accuracy"], "params": size,
               "per_class_accuracy": test["per_class_accuracy"], "train_windows": len(d.ytr),
               "test_windows": len(d.yte), "epochs_run": hist.epochs_run, **_divergence(hist)}
    ctx.save_checkpoint(ctx.model_path(f"har_{kind}.pt"), model, config,
                        extra={"mean": torch.from_numpy(d.mean), "std": torch.from_numpy(d.std)})
    ctx.write_metrics(metrics, selection="final epoch (the per-epoch test curve is drawn, not used to choose)")
    ctx.time(train_seconds=round(hist.seconds, 1))
    _warn_diverged(ctx, hist)
    if metrics["accuracy"] is not None:
        log.info("HAR %s: test accuracy %.3f with %d parameters", kind, metrics["accuracy"], size)


__all__ = ["SpeakerFeatures", "SiameseRecipe", "KwsFeatures", "KwsRecipe", "HarRecipe", "run_speaker_pairs",
           "run_siamese", "run_kws_features", "run_kws", "run_har", "asdict"]
