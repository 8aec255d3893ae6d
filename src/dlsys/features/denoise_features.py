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

from dlsys.core.errors import DataFormatError
from dlsys.evaluation.reconstruct import ideal_binary_mask
from dlsys.features.stft import stft_many


def stft_settings(p) -> tuple[int, int, int]:
    """(n_fft, hop, files per STFT batch) from the `denoise.stft` params, validated."""
    n_fft = p.int("denoise.stft.n_fft", lo=16)
    return n_fft, p.int("denoise.stft.hop", lo=1, hi=n_fft), p.int("denoise.stft.batch_size", lo=1)


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise DataFormatError(f"{what}: lengths differ ({len(a)} vs {len(b)} samples); mixture and source must align")


def denoise_features(data, n_fft: int, hop: int, device, batch_size: int = 64) -> dict:
    """The HW2 files → train magnitudes (|X|, |S|, |N|), test_01 / test_02 complex mixtures + waveforms."""
    _check_pair(data.train_clean, data.train_dirty, "denoise train_clean / train_dirty")
    _check_pair(data.test_01_s, data.test_01_x, "denoise test_01_s / test_01_x")
    train_noise = np.asarray(data.train_dirty, np.float32) - np.asarray(data.train_clean, np.float32)
    sig = [data.train_dirty, data.train_clean, train_noise, data.test_01_x, data.test_01_s, data.test_02_x]
    x, s, n, t1x, t1s, t2x = (z.cpu() for z in stft_many(sig, n_fft, hop, device=device, batch_size=batch_size))
    f32 = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
    return {
        "sr": int(data.sr), "n_fft": n_fft, "hop": hop,
        "train_mag_x": x.abs().T.contiguous(), "train_mag_s": s.abs().T.contiguous(),
        "train_mag_n": n.abs().T.contiguous(),
        "test_01_mix": t1x.T.contiguous(), "test_01_mag_s": t1s.abs().T.contiguous(),
        "test_01_x": f32(data.test_01_x), "test_01_s": f32(data.test_01_s),
        "test_02_mix": t2x.T.contiguous(), "test_02_x": f32(data.test_02_x),
    }


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
    """Model input from magnitudes: log(|X| + floor) or |X|, standardised per bin with training stats."""

    def __init__(self, kind: str, floor: float, mean: torch.Tensor, std: torch.Tensor):
        self.kind, self.floor, self.mean, self.std = kind, floor, mean, std

    @classmethod
    def fit(cls, mag: torch.Tensor, kind: str, floor: float) -> "InputTransform":
        z = cls._raw(mag, kind, floor)
        return cls(kind, floor, z.mean(0), z.std(0).clamp_min(1e-6))

    @staticmethod
    def _raw(mag: torch.Tensor, kind: str, floor: float) -> torch.Tensor:
        return torch.log(mag + floor) if kind == "log" else mag

    def __call__(self, mag: torch.Tensor) -> torch.Tensor:
        return (self._raw(mag, self.kind, self.floor) - self.mean.to(mag.device)) / self.std.to(mag.device)

    def state(self) -> dict:
        return {"kind": self.kind, "floor": self.floor, "mean": self.mean, "std": self.std}
