"""STFT features for the denoising family, computed batched on the configured device.

`denoise_features` (the HW2 files) and `timit_features` (the timit-homework set) return dicts of
tensors that the stages cache with `save_torch`. Magnitudes are stored frame-major, (frames, F), with
the frames of many files concatenated (`frames[i]` of them per file), which is what the frame models
train on; `split_frames` / `pad_frames` rebuild per-file sequences.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from dlsys.core.errors import DataFormatError, UserError
from dlsys.evaluation.reconstruct import ideal_binary_mask
from dlsys.features.stft import stft_many


def stft_settings(p) -> tuple[int, int, int]:
    """(n_fft, hop, files per STFT batch) from the `denoise.stft` params, validated."""
    n_fft = p.int("denoise.stft.n_fft", lo=16)
    return n_fft, p.int("denoise.stft.hop", lo=1, hi=n_fft), p.int("denoise.stft.batch_size", lo=1)


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise DataFormatError(f"{what}: lengths differ ({len(a)} vs {len(b)} samples); mixture and source must align")


def split_tail(x, n_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """A waveform → (head, last `n_tail` samples)."""
    x = np.asarray(x, np.float32)
    return x[: len(x) - n_tail], x[len(x) - n_tail:]


def denoise_features(data, n_fft: int, hop: int, device, batch_size: int = 64, val_seconds: float = 0.0) -> dict:
    """The HW2 files → training magnitudes (|X|, |S|, |N|) of the training pair minus its last `val_seconds`,
    that held-out tail (complex mixture + waveforms) for validation, test_01 / test_02 complex mixtures and
    waveforms. The head and the tail are transformed separately, so no training frame sees a tail sample.
    `data.test_01_s` may be None (no clean reference for test_01): then only the tail measures SNR.
    """
    _check_pair(data.train_clean, data.train_dirty, "denoise train_clean / train_dirty")
    has_ref = getattr(data, "test_01_s", None) is not None
    if has_ref:
        _check_pair(data.test_01_s, data.test_01_x, "denoise test_01_s / test_01_x")
    n_val = int(round(val_seconds * data.sr))
    if n_val < 0 or len(data.train_clean) - n_val < n_fft:
        raise UserError(f"denoise: a validation tail of {val_seconds} s leaves fewer than n_fft = {n_fft} samples "
                        f"of the {len(data.train_clean) / data.sr:.2f}-s training pair to train on")
    tr_s, val_s = split_tail(data.train_clean, n_val)
    tr_x, val_x = split_tail(data.train_dirty, n_val)
    sig = [tr_x, tr_s, tr_x - tr_s, data.test_01_x, data.test_02_x]
    if n_val:
        sig += [val_x, val_s]
    if has_ref:
        sig.append(data.test_01_s)
    specs = [z.cpu() for z in stft_many(sig, n_fft, hop, device=device, batch_size=batch_size)]
    x, s, n, t1x, t2x = specs[:5]
    f32 = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
    out = {
        "sr": int(data.sr), "n_fft": n_fft, "hop": hop, "val_seconds": n_val / data.sr,
        "train_mag_x": x.abs().T.contiguous(), "train_mag_s": s.abs().T.contiguous(),
        "train_mag_n": n.abs().T.contiguous(),
        "test_01_mix": t1x.T.contiguous(), "test_01_x": f32(data.test_01_x),
        "test_02_mix": t2x.T.contiguous(), "test_02_x": f32(data.test_02_x),
    }
    if n_val:
        out.update({"val_mix": specs[5].T.contiguous(), "val_mag_s": specs[6].abs().T.contiguous(),
                    "val_x": f32(val_x), "val_s": f32(val_s)})
    if has_ref:
        out.update({"test_01_mag_s": specs[-1].abs().T.contiguous(), "test_01_s": f32(data.test_01_s)})
    return out


def timit_split_features(mix: Sequence[np.ndarray], clean: Sequence[np.ndarray] | None,
                         noise: Sequence[np.ndarray] | None, names: Sequence[str], n_fft: int, hop: int,
                         device, batch_size: int = 64, keep_mix: bool = True, keep_waves: bool = False) -> dict:
    """One timit split → concatenated frame-major features; IBMs where sources are known."""
    if clean is not None:
        for i, name in enumerate(names):
            _check_pair(mix[i], clean[i], f"timit {name} (mixture vs source)")
            _check_pair(mix[i], noise[i], f"timit {name} (mixture vs noise)")
    out: dict = {"names": list(names),
                 "lengths": torch.tensor([len(m) for m in mix], dtype=torch.long)}
    spec_x = stft_many(mix, n_fft, hop, device=device, batch_size=batch_size)
    out["frames"] = torch.tensor([sx.shape[1] for sx in spec_x], dtype=torch.long)
    cat = lambda specs: torch.cat([z.T for z in specs]).cpu()  # noqa: E731  (ΣT, F)
    mix_frames = cat(spec_x)
    out["mag_x"] = mix_frames.abs()
    if keep_mix:
        out["mix"] = mix_frames
    if clean is not None:
        out["mag_s"] = cat(stft_many(clean, n_fft, hop, device=device, batch_size=batch_size)).abs()
        out["mag_n"] = cat(stft_many(noise, n_fft, hop, device=device, batch_size=batch_size)).abs()
        out["ibm"] = ideal_binary_mask(out["mag_s"], out["mag_n"]).bool()
        if keep_waves:
            out["clean_wave"] = torch.as_tensor(np.concatenate(clean).astype(np.float32))
    if keep_waves:
        out["mix_wave"] = torch.as_tensor(np.concatenate(mix).astype(np.float32))
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
