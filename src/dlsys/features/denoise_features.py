"""STFT features for the denoising family, computed batched on the configured device.

`pair_features` (the HW2 files) returns a `PairFeatures`, `timit_split_features` (one timit-homework
split) a `SplitFeatures`; the stages store them with `to_dict()` (plain tensors, loadable with
`weights_only`) and read them back with `from_dict()`. Magnitudes are frame-major, (frames, F), with
the frames of many files concatenated (`frames[i]` of them per file), which is what the frame models
train on; `split_frames` / `pad_frames` rebuild per-file sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from dlsys.core.errors import DataFormatError, UserError
from dlsys.features.stft import ideal_binary_mask, stft_many


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise DataFormatError(f"{what}: lengths differ ({len(a)} vs {len(b)} samples); mixture and source must align")


def _f32(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float32))


def _stored(obj) -> dict:
    """A dataclass → dict of its fields (nested dataclasses too), for `save_torch`."""
    return {f.name: (_stored(v) if hasattr(v, "__dataclass_fields__") else v)
            for f in fields(obj) for v in [getattr(obj, f.name)]}


def _check_keys(cls, d: dict, what: str) -> None:
    if not isinstance(d, dict):
        raise DataFormatError(f"{what}: expected a dict of {cls.__name__} fields, got {type(d).__name__}")
    missing = [f.name for f in fields(cls) if f.name not in d]
    if missing:
        raise DataFormatError(f"{what}: missing {', '.join(missing)} (written by an older version? "
                              f"re-run its features stage)")


@dataclass
class Recording:
    """One recording to denoise: the complex STFT frames of its noisy input (T, F), that input's waveform,
    and its clean waveform when known (None: no reference, no SNR)."""

    mix: torch.Tensor
    noisy: torch.Tensor
    clean: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return len(self.noisy)

    @classmethod
    def from_dict(cls, d: dict, what: str = "recording") -> "Recording":
        _check_keys(cls, d, what)
        return cls(d["mix"], d["noisy"], d["clean"])


@dataclass
class PairFeatures:
    """The HW2 files as the frame denoisers see them.

    The training pair is cut into [train | val | pair_test]: its last `test_seconds` are `pair_test`, a
    test recording with a clean reference (None when `test_seconds` is 0; the course's test_01 may have
    no reference), the `val_seconds` before them are `val`, the tail that selects the epoch (None when
    0), and the rest gives the training magnitudes (|X|, |S|, |N|). Each piece is transformed on its own,
    so no training frame holds a sample of another. `test_01.clean` is None when its reference is absent.
    """

    sr: int
    n_fft: int
    hop: int
    val_seconds: float
    test_seconds: float
    train_mag_x: torch.Tensor
    train_mag_s: torch.Tensor
    train_mag_n: torch.Tensor
    val: Recording | None
    pair_test: Recording | None
    test_01: Recording
    test_02: Recording

    @property
    def n_bins(self) -> int:
        return int(self.train_mag_x.shape[1])

    def to_dict(self) -> dict:
        return _stored(self)

    @classmethod
    def from_dict(cls, d: dict, what: str = "denoise features") -> "PairFeatures":
        _check_keys(cls, d, what)
        rec = {k: (Recording.from_dict(d[k], f"{what}: {k}") if d[k] is not None else None)
               for k in ("val", "pair_test", "test_01", "test_02")}
        return cls(**{**{f.name: d[f.name] for f in fields(cls)}, **rec})


def split_tail(x, n_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """A waveform → (head, last `n_tail` samples)."""
    x = np.asarray(x, np.float32)
    return x[: len(x) - n_tail], x[len(x) - n_tail:]


def pair_features(data, n_fft: int, hop: int, device, batch_size: int = 64, val_seconds: float = 0.0,
                  test_seconds: float = 0.0) -> PairFeatures:
    """The HW2 files (`data`: train_clean, train_dirty, test_01_x, test_01_s or None, test_02_x, sr) →
    training magnitudes of the pair minus its last `val_seconds + test_seconds`, the validation tail, the
    held-out test tail (`pair_test`), test_01 and test_02."""
    _check_pair(data.train_clean, data.train_dirty, "denoise train_clean / train_dirty")
    has_ref = getattr(data, "test_01_s", None) is not None
    if has_ref:
        _check_pair(data.test_01_s, data.test_01_x, "denoise test_01_s / test_01_x")
    n_val, n_test = int(round(val_seconds * data.sr)), int(round(test_seconds * data.sr))
    if n_val < 0 or n_test < 0 or len(data.train_clean) - n_val - n_test < n_fft:
        raise UserError(f"denoise: a validation tail of {val_seconds} s and a test tail of {test_seconds} s leave "
                        f"fewer than n_fft = {n_fft} samples of the {len(data.train_clean) / data.sr:.2f}-s training "
                        f"pair to train on")
    for what, n, seconds, key in (("validation", n_val, val_seconds, "val_seconds"),
                                  ("test", n_test, test_seconds, "test_seconds")):
        if 0 < n < n_fft:
            raise UserError(f"denoise: a {what} tail of {seconds} s is shorter than one STFT frame (n_fft = {n_fft} "
                            f"samples); set denoise.frame.{key} to 0 for none")
    rest_s, test_s = split_tail(data.train_clean, n_test)
    rest_x, test_x = split_tail(data.train_dirty, n_test)
    tr_s, val_s = split_tail(rest_s, n_val)
    tr_x, val_x = split_tail(rest_x, n_val)
    held = {name: pair for name, pair, n in (("val", (val_x, val_s), n_val), ("pair_test", (test_x, test_s), n_test))
            if n}
    sig = [tr_x, tr_s, tr_x - tr_s, data.test_01_x, data.test_02_x] + [x for x, _ in held.values()]
    specs = [z.cpu() for z in stft_many(sig, n_fft, hop, device=device, batch_size=batch_size)]
    x, s, n, t1x, t2x = specs[:5]
    frames = lambda z: z.T.contiguous()  # noqa: E731  (F, T) → frame-major (T, F)
    recs = {name: Recording(frames(spec), _f32(wx), _f32(ws)) for (name, (wx, ws)), spec in zip(held.items(), specs[5:])}
    return PairFeatures(
        sr=int(data.sr), n_fft=n_fft, hop=hop, val_seconds=n_val / data.sr, test_seconds=n_test / data.sr,
        train_mag_x=frames(x.abs()), train_mag_s=frames(s.abs()), train_mag_n=frames(n.abs()),
        val=recs.get("val"), pair_test=recs.get("pair_test"),
        test_01=Recording(frames(t1x), _f32(data.test_01_x), _f32(data.test_01_s) if has_ref else None),
        test_02=Recording(frames(t2x), _f32(data.test_02_x)))


@dataclass
class SplitFeatures:
    """One timit-homework split: per-file names, sample and frame counts; concatenated frame-major noisy
    magnitudes; where kept, complex mixtures and waveforms; where sources are known, |S|, |N| and the
    ideal binary masks."""

    names: list[str]
    lengths: torch.Tensor
    frames: torch.Tensor
    mag_x: torch.Tensor
    mix: torch.Tensor | None = None
    mag_s: torch.Tensor | None = None
    mag_n: torch.Tensor | None = None
    ibm: torch.Tensor | None = None
    clean_wave: torch.Tensor | None = None
    mix_wave: torch.Tensor | None = None

    def to_dict(self) -> dict:
        return _stored(self)

    @classmethod
    def from_dict(cls, d: dict, what: str = "timit features") -> "SplitFeatures":
        _check_keys(cls, d, what)
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def timit_split_features(mix: Sequence[np.ndarray], clean: Sequence[np.ndarray] | None,
                         noise: Sequence[np.ndarray] | None, names: Sequence[str], n_fft: int, hop: int,
                         device, batch_size: int = 64, keep_mix: bool = True, keep_waves: bool = False) -> SplitFeatures:
    """One timit split → concatenated frame-major features; IBMs where sources are known."""
    if clean is not None:
        for i, name in enumerate(names):
            _check_pair(mix[i], clean[i], f"timit {name} (mixture vs source)")
            _check_pair(mix[i], noise[i], f"timit {name} (mixture vs noise)")
    spec_x = stft_many(mix, n_fft, hop, device=device, batch_size=batch_size)
    cat = lambda specs: torch.cat([z.T for z in specs]).cpu()  # noqa: E731  (ΣT, F)
    mix_frames = cat(spec_x)
    out = SplitFeatures(names=list(names), lengths=torch.tensor([len(m) for m in mix], dtype=torch.long),
                        frames=torch.tensor([sx.shape[1] for sx in spec_x], dtype=torch.long),
                        mag_x=mix_frames.abs(), mix=mix_frames if keep_mix else None)
    if clean is not None:
        out.mag_s = cat(stft_many(clean, n_fft, hop, device=device, batch_size=batch_size)).abs()
        out.mag_n = cat(stft_many(noise, n_fft, hop, device=device, batch_size=batch_size)).abs()
        out.ibm = ideal_binary_mask(out.mag_s, out.mag_n).bool()
        if keep_waves:
            out.clean_wave = torch.as_tensor(np.concatenate(clean).astype(np.float32))
    if keep_waves:
        out.mix_wave = torch.as_tensor(np.concatenate(mix).astype(np.float32))
    return out


def split_frames(flat: torch.Tensor, frames: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.split(flat, frames.tolist()))


def pad_frames(flat: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """(ΣT, F) + per-file frame counts → (N, T_max, F), zero-padded."""
    return pad_sequence(split_frames(flat, frames), batch_first=True)


def chunk_frames(flat: torch.Tensor, frames: torch.Tensor, t_trunc: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Cut every file's frame sequence into pieces of at most `t_trunc` frames (0 = whole files)."""
    pieces: list[torch.Tensor] = []
    for seq in split_frames(flat, frames):
        pieces += list(torch.split(seq, t_trunc)) if t_trunc > 0 else [seq]
    return pieces, torch.tensor([len(p) for p in pieces], dtype=torch.long)


def split_waves(flat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenated waveforms + lengths → zero-padded (N, L_max)."""
    return pad_sequence(list(torch.split(flat, lengths.tolist())), batch_first=True)


SILENT_WINDOW = 1e-12  # a remix window with at most this share of the file's own noise energy counts as silent


def remix_magnitudes(mag_s: torch.Tensor, mag_n: torch.Tensor, frames: torch.Tensor,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """New training mixtures from a split's own sources, drawn afresh on every call: file i's speech |S_i| with
    the noise of file perm(i) (a random permutation of the files, so now and then its own), read from a random
    frame onwards (wrapping round), scaled so that file i keeps its own noise energy, so its SNR, and added with
    a uniformly random phase between the two sources in every bin, as between two independent recordings:
    |X|² = |S|² + |gN'|² + 2|S||gN'| cos θ. A window with (next to) no energy cannot be scaled so; that file
    keeps its own noise as it is. Frame-major (ΣT, F) in and out, as the split's features; returns
    (|X|, IBM = 1[|S| > |gN'|]) as float tensors. Random numbers come from `generator` (on the CPU)."""
    if mag_s.shape != mag_n.shape or mag_s.shape[0] != int(frames.sum()):
        raise ValueError(f"remix: |S| {tuple(mag_s.shape)}, |N| {tuple(mag_n.shape)} and {int(frames.sum())} "
                         "frames do not match")
    if bool((frames < 1).any()):
        raise ValueError("remix: every file needs at least one frame")
    device = mag_s.device
    n_files = len(frames)
    frames = frames.to(device)
    start = torch.cumsum(frames, 0) - frames
    file_of = torch.repeat_interleave(torch.arange(n_files, device=device), frames)
    t = torch.arange(mag_s.shape[0], device=device) - start[file_of]
    partner = torch.randperm(n_files, generator=generator).to(device)
    offset = (torch.rand(n_files, generator=generator, dtype=torch.float64).to(device)
              * frames[partner]).long()
    src = start[partner][file_of] + (offset[file_of] + t) % frames[partner][file_of]

    def energy(mag: torch.Tensor) -> torch.Tensor:  # per file, in float64 (long files sum many squares)
        return torch.zeros(n_files, dtype=torch.float64, device=device).index_add_(
            0, file_of, mag.double().square().sum(1))

    e_own, e_new = energy(mag_n), energy(mag_n[src])
    faint = e_new <= SILENT_WINDOW * e_own  # its gain would blow noise-floor bits up to the file's noise level
    src = torch.where(faint[file_of], torch.arange(len(src), device=device), src)
    gain = torch.where(faint, torch.ones_like(e_new), (e_own / e_new.clamp_min(1e-300)).sqrt())
    noise = mag_n[src] * gain.to(mag_n.dtype)[file_of][:, None]
    cos = torch.cos(2 * torch.pi * torch.rand(mag_s.shape, generator=generator, dtype=mag_s.dtype)).to(device)
    mag_x = (mag_s.square() + noise.square() + 2 * mag_s * noise * cos).clamp_min(0).sqrt()
    return mag_x, ideal_binary_mask(mag_s, noise)


# Per-bin weights of the mask loss, from the mixture magnitude |X|. A mask error in a bin costs the
# reconstruction about |X|^2 of error energy, so the unweighted loss spends as much effort on silent bins as
# on the loud ones that decide the SNR; "magnitude" is the middle way (power lets a few bins dominate).
BIN_WEIGHTS = {
    "uniform": None,                     # the course's plain BCE: every bin counts the same
    "magnitude": lambda mag: mag,
    "power": lambda mag: mag * mag,
}


def bin_weights(mag: torch.Tensor, kind: str) -> torch.Tensor | None:
    """Loss weights for magnitudes (frames, F) by name (`BIN_WEIGHTS`), scaled to mean 1 over all of them so
    the weighted loss keeps the unweighted one's scale over the whole set (a constant 0.5 mask costs ln 2 on
    average); None for "uniform". No frames, or all-zero magnitudes, are refused: no bin could carry weight."""
    if kind not in BIN_WEIGHTS:
        raise ValueError(f"unknown loss weight {kind!r}; choose one of {', '.join(BIN_WEIGHTS)}")
    fn = BIN_WEIGHTS[kind]
    if fn is None:
        return None
    if not mag.numel():
        raise ValueError(f"loss weight {kind!r}: no frames to weight")
    w = fn(mag.double())  # float64: one rounding, whatever the size of the set
    mean = float(w.mean())
    if not mean > 0.0:
        raise ValueError(f"loss weight {kind!r}: every magnitude is zero (silent audio)")
    return (w / mean).to(mag.dtype)


class InputTransform:
    """Model input from magnitudes: log(|X| / ref + floor) or |X| / ref, standardised per bin with training stats.

    `ref` is the RMS of the training magnitudes, so the floor is relative to the recording's level and the
    input is the same whatever the overall gain of the audio (train and test scaled alike).
    """

    def __init__(self, kind: str, floor: float, mean: torch.Tensor, std: torch.Tensor, ref: float = 1.0):
        self.kind, self.floor, self.mean, self.std, self.ref = kind, floor, mean, std, float(ref)

    @classmethod
    def fit(cls, mag: torch.Tensor, kind: str, floor: float) -> "InputTransform":
        ref = float(mag.double().pow(2).mean().sqrt().clamp_min(torch.finfo(torch.float32).tiny))
        z = cls._raw(mag, kind, floor, ref)
        return cls(kind, floor, z.mean(0), z.std(0).clamp_min(1e-6), ref)

    @staticmethod
    def _raw(mag: torch.Tensor, kind: str, floor: float, ref: float) -> torch.Tensor:
        rel = mag / ref
        return torch.log(rel + floor) if kind == "log" else rel

    def __call__(self, mag: torch.Tensor) -> torch.Tensor:
        z = self._raw(mag, self.kind, self.floor, self.ref)
        return (z - self.mean.to(mag.device)) / self.std.to(mag.device)

    def state(self) -> dict:
        return {"kind": self.kind, "floor": self.floor, "mean": self.mean, "std": self.std, "ref": self.ref}

    @classmethod
    def from_state(cls, state: dict) -> "InputTransform":
        return cls(state["kind"], state["floor"], state["mean"], state["std"], state["ref"])
