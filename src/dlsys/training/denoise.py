"""Training and evaluation for the denoisers, on top of the shared loop (`dlsys.training.fit`).

Frame models (FC, 1-D CNN) train on noisy → clean magnitude columns of the HW2 training pair and are
validated every epoch by the SNR of its reconstructed held-out tail (never by a test file). The
recurrent model trains on the timit mixtures' ideal binary masks and is validated by the mean/median
SNR over all `v/` files.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from dlsys.evaluation.reconstruct import reconstruct, snr_report, snr_report_many, masked_istft_many
from dlsys.features.denoise_features import InputTransform, chunk_frames, pad_frames, split_waves
from dlsys.models.denoisers import frame_mask, masked_bce
from dlsys.training.loop import EpochLog, TensorBatches, fit


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    grad_clip: float | None = None


# ---------------------------------------------------------------- frame models (FC, 1-D CNN)

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

    def denoise(self, mix: torch.Tensor, length: int, n_fft: int, hop: int) -> torch.Tensor:
        """Complex mixture (T, F) frame-major → waveform."""
        mag = self.magnitudes(mix.abs())
        return reconstruct(mix.T, mag.T, length, n_fft, hop)


def frame_selection(feats: dict) -> str:
    """How `train_frame_denoiser` chooses its epoch on these features (for the metrics file)."""
    if "val_mix" in feats:
        return (f"best epoch by SNR on the held-out last {feats['val_seconds']:g} s of the training pair "
                f"(never trained on); test_01 is not used for selection")
    return "final epoch (no validation tail: denoise.frame.val_seconds is 0)"


def train_frame_denoiser(model: torch.nn.Module, feats: dict, cfg: TrainConfig, device, generator,
                         input_kind: str, log_floor: float, predict: str, desc: str) -> tuple[FrameDenoiser, EpochLog]:
    """Fit on the training columns; every epoch, SNR of the denoised held-out tail; best epoch restored.

    Only the training magnitudes and the tail (`val_*`) are read: the test files never steer training
    or selection. Without a tail the final epoch is kept.
    """
    mag_x = feats["train_mag_x"].to(device)
    mag_s = feats["train_mag_s"].to(device)
    transform = InputTransform.fit(mag_x, input_kind, log_floor)
    scale = float(mag_s.pow(2).mean().sqrt().clamp_min(1e-12))  # RMS clean magnitude: targets ~ unit scale
    den = FrameDenoiser(model.to(device), transform, scale, predict)
    inputs = transform(mag_x)
    batches = TensorBatches([inputs, mag_x / scale, mag_s / scale], cfg.batch_size, generator=generator)

    def loss_fn(m, batch):
        x, rel_x, rel_s = batch
        return torch.nn.functional.mse_loss(den.output_to_magnitude(m(x), rel_x), rel_s)

    evaluate = None
    if "val_mix" in feats:
        mix = feats["val_mix"].to(device)
        clean, noisy = feats["val_s"], feats["val_x"]
        n_fft, hop = feats["n_fft"], feats["hop"]

        def evaluate(_m, _epoch) -> dict:
            est = den.denoise(mix, len(noisy), n_fft, hop).cpu()
            rep = snr_report(clean, est, noisy)
            return {"val_snr_db": float(rep.snr[0]), "val_snri_db": float(rep.snri[0])}

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = fit(model, opt, batches, loss_fn, cfg.epochs, evaluate=evaluate,
                  select="val_snr_db" if evaluate else None, mode="max", desc=desc, grad_clip=cfg.grad_clip)
    return den, history


# ---------------------------------------------------------------- recurrent IBM model

def padded_split(split: dict, transform: InputTransform, device) -> dict:
    """A features split → padded model inputs (N, T, F), complex mixtures (N, F, T), waves (N, L)."""
    out = {"frames": split["frames"], "lengths": split["lengths"],
           "inputs": pad_frames(transform(split["mag_x"]), split["frames"]).to(device),
           "mix": pad_frames(split["mix"], split["frames"]).transpose(1, 2).to(device)}
    for key in ("clean_wave", "mix_wave"):
        if key in split:
            out[key] = split_waves(split[key], split["lengths"]).to(device)
    if "ibm" in split:
        out["ibm"] = pad_frames(split["ibm"].float(), split["frames"]).transpose(1, 2).to(device)
    return out


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


def denoise_split(model, split: dict, n_fft: int, hop: int, batch: int, binary: bool) -> torch.Tensor:
    masks = predict_masks(model, split["inputs"], split["frames"], batch, binary)
    return masked_istft_many(split["mix"], masks, split["lengths"], n_fft, hop)


def train_mask_rnn(model: torch.nn.Module, tr: dict, v: dict, cfg: TrainConfig, device, generator,
                   input_kind: str, log_floor: float, t_trunc: int, eval_batch: int, binary: bool,
                   n_fft: int, hop: int, desc: str = "rnn") -> tuple[InputTransform, dict, EpochLog]:
    """Fit the mask RNN on (truncated) training sequences; every epoch mean/median SNR over `v`."""
    transform = InputTransform.fit(tr["mag_x"], input_kind, log_floor)
    x_pieces, lengths = chunk_frames(transform(tr["mag_x"]), tr["frames"], t_trunc)
    y_pieces, _ = chunk_frames(tr["ibm"].float(), tr["frames"], t_trunc)
    x = pad_sequence(x_pieces, batch_first=True).to(device)
    y = pad_sequence(y_pieces, batch_first=True).to(device)
    batches = TensorBatches([x, y, lengths.to(device)], cfg.batch_size, generator=generator)

    def loss_fn(m, batch):
        xb, yb, lb = batch
        t = int(lb.max())  # trim the batch to its longest sequence
        return masked_bce(m(xb[:, :t], lb), yb[:, :t], lb)

    vp = padded_split(v, transform, device)
    model.to(device)

    def evaluate(m, _epoch) -> dict:
        est = denoise_split(m, vp, n_fft, hop, eval_batch, binary)
        rep = snr_report_many(vp["clean_wave"], est, vp["mix_wave"], vp["lengths"])
        s = rep.summary("val_")
        return {"val_snr_db": s["val_snr_db"], "val_snr_median_db": s["val_snr_median_db"],
                "val_snri_db": s["val_snri_db"]}

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = fit(model, opt, batches, loss_fn, cfg.epochs, evaluate=evaluate, select="val_snr_db",
                  mode="max", desc=desc, grad_clip=cfg.grad_clip)
    return transform, vp, history
