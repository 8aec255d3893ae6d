"""What a person checks after acquiring a dataset: a preview of every dataset, and the acquisition run.

`run_acquire(ctx)` builds data/raw/<name>/ through the registry, which validates everything and draws
the preview (this module) inside temporary directories before anything is renamed into place; the
metrics file is written last. Previews draw from the data object the dataset's reader returned during
validation, so they need no data module of their own: images as PNG grids under plots/data/<name>/,
audio as listening examples under audio/data/<name>/ with their spectrograms under plots/data/<name>/.

Each preview copes with any data the readers accept (an all-zero or one-sample recording, a class with
no example), because a preview that crashes would fail an acquisition whose data are fine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dlsys.plots import image_grid, new_figure, save_figure, titled

log = logging.getLogger(__name__)

SPEC_NFFT = 512          # spectrogram frame of the audio previews (32 ms at 16 kHz)
SPEC_HOP = 128
SPEC_FLOOR_DB = -130.0   # colour scale floor: silence shows as black instead of -inf
PREVIEW_SECONDS = 5.0    # length of the listening examples cut from long recordings
GRID = 10                # image previews: up to GRID examples per class, GRID classes


# --------------------------------------------------------------------------- images

def _class_grid(x: np.ndarray, y: np.ndarray, names: list[str], title: str, path: Path) -> None:
    cells = []
    for k in range(len(names)):
        idx = np.flatnonzero(y == k)[:GRID]
        cells += [x[i] for i in idx] + [None] * (GRID - len(idx))
    save_figure(image_grid(cells, len(names), GRID, title, row_labels=names, cell=0.8), path)


def preview_mnist(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    _class_grid(data.x_train, data.y_train, [str(k) for k in range(10)],
                titled("MNIST train samples, one row per class", source), plots / "samples.png")


def preview_cifar10(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    _class_grid(data.x_train, data.y_train, list(data.class_names),
                titled("CIFAR-10 train samples, one row per class", source), plots / "samples.png")


def preview_sevens(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    cells = list(data.train[:50]) + [None] * max(0, 50 - len(data.train))
    save_figure(image_grid(cells, 5, 10, titled("Rotated sevens (train)", source)), plots / "samples.png")


# --------------------------------------------------------------------------- sensor windows

def preview_har(data: Any, plots: Path, audio: Path | None, source: str, length: int = 80) -> None:
    """One window of each activity, three axes, so a person can see what the classifier gets."""
    X, y, _ = data.windows(length, length // 2)
    fig, axes = new_figure(ncols=3, nrows=2, size=(12, 5))
    for a, ax in enumerate(axes.flat[:len(data.activities)]):
        hits = np.flatnonzero(y == a)
        if len(hits):
            for axis, trace in zip("xyz", X[hits[len(hits) // 2]].T):
                ax.plot(trace, label=axis)
        else:
            ax.text(0.5, 0.5, "no window", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(data.activities[a])
        ax.set_xlabel("sample (20 Hz)"), ax.set_ylabel("acceleration")
    axes[0, 0].legend(title="axis", fontsize=8)
    fig.suptitle(titled("WISDM windows (x, y, z)", source))
    save_figure(fig, plots / "har_windows.png")


# --------------------------------------------------------------------------- audio

def spectrogram_db(x: np.ndarray, sr: int, nfft: int = SPEC_NFFT, hop: int = SPEC_HOP) -> np.ndarray:
    """(frames, nfft//2 + 1) power spectral density in dB, floored: finite for silence and short clips."""
    x = np.asarray(x, np.float64)
    if len(x) < nfft:
        x = np.pad(x, (0, nfft - len(x)))
    window = np.hanning(nfft)
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::hop] * window
    psd = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / (sr * np.sum(window ** 2))
    psd[:, 1:-1] *= 2  # one-sided
    return np.maximum(10.0 * np.log10(np.maximum(psd, 1e-300)), SPEC_FLOOR_DB)


def _audio_preview(clips: list[tuple[str, np.ndarray]], sr: int, plots: Path, audio: Path | None, source: str,
                   what: str) -> None:
    """Listening examples (wav) in `audio` and their spectrograms (one PNG) in `plots`."""
    import soundfile as sf

    if not clips:
        clips = [("no_clip", np.zeros(1, np.float32))]
    if audio is not None:
        for name, x in clips:  # `audio` is a temporary directory: plain writes, renamed as a whole
            sf.write(audio / f"{name}.wav", np.clip(np.asarray(x, np.float32), -1.0, 1.0), int(sr),
                     subtype="PCM_16", format="WAV")
    fig, axes = new_figure(1, len(clips), size=(7.0, 2.1 * len(clips)))
    fig.subplots_adjust(hspace=0.7)
    for ax, (name, x) in zip(axes[:, 0], clips):
        db = spectrogram_db(x, sr)
        top = max(float(db.max()), SPEC_FLOOR_DB + 10.0)
        ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", vmin=SPEC_FLOOR_DB, vmax=top,
                  extent=(0.0, max(len(x), 1) / sr, 0.0, sr / 2.0), interpolation="nearest")
        ax.set_ylabel("Hz")
        ax.set_title(name if len(x) else f"{name} (empty)", fontsize=8)
        ax.grid(False)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(titled(what, source))
    save_figure(fig, plots / "spectrograms.png")


def preview_denoise(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    n = int(PREVIEW_SECONDS * data.sr)
    _audio_preview([("train_clean_5s", data.train_clean[:n]), ("train_dirty_5s", data.train_dirty[:n]),
                    ("test_02_x_5s", data.test_02_x[:n])], data.sr, plots, audio, source,
                   "denoise: clean / dirty / test_02")


def preview_timit_denoise(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    clips = []
    for i, name in enumerate(data.tr_names[:2]):
        ident = name[3:]
        clips += [(f"trs{ident}", data.tr_s[i]), (f"trn{ident}", data.tr_n[i]), (name, data.tr_x[i])]
    _audio_preview(clips, data.sr, plots, audio, source, "timit_denoise: source / noise / mixture")


def preview_speakers(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    u = data.utterances_per_speaker
    clips = [(f"train_speaker{k}_utt0", data.train[k * u]) for k in range(min(3, len(data.train) // u))]
    clips.append(("train_speaker0_utt1", data.train[1]))
    _audio_preview(clips, data.sr, plots, audio, source, "speakers: three voices (+ a second utterance of the first)")


def preview_speech_commands(data: Any, plots: Path, audio: Path | None, source: str) -> None:
    picks = [data.clips[data.words.index(w)] for w in ("yes", "no", "stop", "go") if w in data.words] \
        or data.clips[:4]
    clips = [(f"{rel.split('/')[0]}_{Path(rel).stem}", data.read(rel)) for rel in picks]
    if data.background:
        rel = data.background[0]
        clips.append((f"background_{Path(rel).stem}", data.read(rel)[:data.sr]))
    _audio_preview(clips, data.sr, plots, audio, source, "speech_commands: command words and a background clip")


Preview = Callable[[Any, Path, "Path | None", str], None]
# The registry names each dataset's preview by key (DatasetSpec.preview): drawing lives above data/.
PREVIEWS: dict[str, Preview] = {
    "mnist": preview_mnist,
    "sevens": preview_sevens,
    "cifar10": preview_cifar10,
    "har": preview_har,
    "denoise": preview_denoise,
    "timit_denoise": preview_timit_denoise,
    "speakers": preview_speakers,
    "speech_commands": preview_speech_commands,
}


# --------------------------------------------------------------------------- the stage

# dataset.json keys that describe how the data were read, not the data: kept out of the metrics.
NOT_METRICS = ("name", "source", "max_array_mb")


def run_acquire(ctx) -> dict:
    """acquire_<name> (ctx.step is the dataset): data/raw/<name>/ and its preview, then the metrics."""
    from dlsys.data.registry import acquire, get_spec

    spec = get_spec(ctx.step)  # unknown names fail before any work
    timings: dict = {}
    preview = PREVIEWS[spec.preview] if spec.preview is not None else None
    meta = acquire(ctx.step, ctx.params, seed=ctx.seed, preview=preview, timings=timings)
    ctx.time(**timings)
    ctx.use_data(ctx.step)
    ctx.write_metrics({k: v for k, v in meta.items() if k not in NOT_METRICS})
    return meta
