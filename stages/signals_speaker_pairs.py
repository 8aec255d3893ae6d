"""signals_speaker_pairs: STFT magnitudes of every speaker utterance (batched) and the fixed test pairs."""

import logging

import numpy as np
import torch

from dlsys.core import load_params, device_from_params, save_torch
from dlsys.core.stage import run_stage
from dlsys.data.audio.sets import load_speakers
from dlsys.features.pairs import all_pairs
from dlsys.features.stft import stft

log = logging.getLogger("dlsys.signals_speaker_pairs")
OUT = "data/features/signals/speakers.pt"


def magnitudes(x: np.ndarray, n_fft: int, hop: int, device: torch.device, batch: int) -> torch.Tensor:
    """|STFT| (N, n_fft//2 + 1, frames) of every row, computed in device batches; CPU float32 result."""
    t = torch.from_numpy(x)
    return torch.cat([stft(t[i:i + batch].to(device), n_fft, hop).abs().cpu() for i in range(0, len(t), batch)])


def main() -> None:
    p = load_params()
    s = p.sub("speaker")
    n_fft, hop = s.int("n_fft", lo=16), s.int("hop", lo=1)
    L = s.int("pairs_per_speaker", lo=1)
    device = device_from_params(p)
    data = load_speakers("data/raw/speakers")
    u = data.utterances_per_speaker
    batch = s.int("stft_batch", lo=1)
    train, test = magnitudes(data.train, n_fft, hop, device, batch), magnitudes(data.test, n_fft, hop, device, batch)
    # Test pairs: built like the training pairs, from the (unseen) test speakers, with a fixed seed.
    pairs = all_pairs(len(data.test) // u, u, L, np.random.default_rng(s.int("test_pair_seed", lo=0)))
    save_torch({"train": train, "test": test, "utterances_per_speaker": u, "source": data.source,
                "test_first": torch.from_numpy(pairs.first), "test_second": torch.from_numpy(pairs.second),
                "test_label": torch.from_numpy(pairs.label)}, OUT)
    log.info("train %s, test %s magnitudes; %d test pairs (%d same-speaker)", tuple(train.shape),
             tuple(test.shape), len(pairs), int(pairs.label.sum()))


if __name__ == "__main__":
    run_stage(main, "signals_speaker_pairs")
