"""signals_kws_features: log-mel features of every Speech Commands clip (10 commands + unknown + background)."""

import logging

import numpy as np
import torch

from dlsys.core import load_params, device_from_params, save_torch, seed_everything
from dlsys.core.errors import DataFormatError
from dlsys.core.stage import run_stage
from dlsys.data.audio.sets import load_speech_commands
from dlsys.data.wav import read_wav
from dlsys.features.logmel import LogMel, fit_length, logmel_batched
from tqdm.auto import tqdm

log = logging.getLogger("dlsys.signals_kws_features")
OUT = "data/features/signals/kws.pt"
SPLITS = ("train", "validation", "testing")
UNKNOWN, BACKGROUND = "unknown", "background"


def background_segments(noises: list[np.ndarray], counts: dict[str, int], length: int, gain: tuple[float, float],
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """1-s background clips per split, cut from disjoint stretches of each noise file, random gain.

    Each file is divided in contiguous parts in proportion to the split sizes, so no noise sample is
    shared between train, validation and test.
    """
    total = sum(counts.values())
    out = {}
    lo = 0.0
    for split in SPLITS:
        share = counts[split] / total
        clips = []
        for k in range(counts[split]):
            x = noises[int(rng.integers(len(noises)))]
            a, b = int(lo * len(x)), int((lo + share) * len(x))
            start = int(rng.integers(a, max(a + 1, b - length)))
            seg = fit_length(x[start:min(start + length, b)], length)
            clips.append(seg * 10 ** rng.uniform(np.log10(gain[0]), np.log10(gain[1])))
        out[split] = np.stack(clips).astype(np.float32) if clips else np.zeros((0, length), np.float32)
        lo += share
    return out


def main() -> None:
    p = load_params()
    k = p.sub("kws")
    commands = k.list("commands", item_type=str, min_len=1)
    classes = commands + [UNKNOWN, BACKGROUND]
    f = k.sub("features")
    sr = f.int("sr", lo=1000)
    length = int(round(f.float("segment_seconds", lo=0.1) * sr))
    extractor = LogMel(sr=sr, n_fft=f.int("n_fft", lo=16), frame=int(round(f.float("frame_ms", lo=1) * sr / 1000)),
                       hop=int(round(f.float("hop_ms", lo=1) * sr / 1000)), n_mels=f.int("n_mels", lo=1),
                       fmin=f.float("fmin", lo=0), fmax=f.float("fmax", lo=0), eps=f.float("eps", lo=0))
    device = device_from_params(p)
    seed_everything(p.int("seed", lo=0))
    rng = np.random.default_rng(p.int("seed", lo=0))

    sc = load_speech_commands("data/raw/speech_commands")
    missing = [c for c in commands if c not in set(sc.words)]
    if missing:
        raise DataFormatError(f"{sc.root}: no clips for command word(s) {', '.join(missing)} (params kws.commands)")
    index = {w: i for i, w in enumerate(commands)}
    audio = np.stack([fit_length(read_wav(sc.root / c, sr), length)
                      for c in tqdm(sc.clips, desc="reading clips", leave=False, mininterval=1.0)])
    labels = np.array([index.get(w, len(commands)) for w in sc.words], np.int64)
    split = np.array(sc.splits)
    if not sc.background:
        raise DataFormatError(f"{sc.root}/_background_noise_: no background noise files")
    noises = [read_wav(sc.root / b, sr) for b in sc.background]
    frac = k.float("background_fraction", lo=0)
    counts = {s: int(round(frac * (split == s).sum())) for s in SPLITS}
    bg = background_segments(noises, counts, length, tuple(k.list("background_gain", item_type=(int, float), min_len=2, lo=0)), rng)

    data = {"classes": classes, "source": sc.source}
    for s in SPLITS:
        x = np.concatenate([audio[split == s], bg[s]])
        y = np.concatenate([labels[split == s], np.full(len(bg[s]), len(classes) - 1, np.int64)])
        data[s] = {"x": logmel_batched(x, extractor, device), "y": torch.from_numpy(y)}
        log.info("%s: %d clips (%d background), %s features", s, len(y), len(bg[s]), tuple(data[s]["x"].shape))
    save_torch(data, OUT)


if __name__ == "__main__":
    run_stage(main, "signals_kws_features")
