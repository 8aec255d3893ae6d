"""Difficulty checks for the synthetic audio sets (recorded in metrics/data/<name>.json per commit).

* denoise: SNR of the dirty file against the clean one (should match the param within ±1 dB);
* timit_denoise: oracle ideal binary mask SNR vs the unprocessed mixture (learnable, non-trivial);
* speakers: cosine similarity of mean log-magnitude spectra, threshold fitted on training pairs;
* speech_commands: logistic regression on mean log-mel features.
"""

from __future__ import annotations

import numpy as np
import torch

# The data layer sits below features/ and evaluation/, so the checks carry their own copies of the two
# tools they need: the same centred periodic-Hann STFT as dlsys.features.stft, the same guarded SNR
# as dlsys.evaluation.snr (tests/data/audio check that they agree).
EPS = 1e-20


def snr_db(reference, estimate) -> float:
    s, e = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    return float(10.0 * np.log10((np.sum(s**2) + EPS) / (np.sum((s - e) ** 2) + EPS)))


def stft(x: torch.Tensor, n_fft: int = 1024, hop: int = 512) -> torch.Tensor:
    window = torch.hann_window(n_fft, periodic=True, device=x.device, dtype=x.dtype)
    return torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, center=True, pad_mode="constant",
                      return_complex=True)


def istft(spec: torch.Tensor, length: int, n_fft: int = 1024, hop: int = 512) -> torch.Tensor:
    real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    window = torch.hann_window(n_fft, periodic=True, device=spec.device, dtype=real_dtype)
    return torch.istft(spec, n_fft=n_fft, hop_length=hop, window=window, center=True, length=length)


def snr(reference: np.ndarray, mixture: np.ndarray) -> float:
    return snr_db(reference, mixture)


def _pad_stack(signals: list[np.ndarray]) -> torch.Tensor:
    n = max(len(s) for s in signals)
    out = np.zeros((len(signals), n), np.float32)
    for i, s in enumerate(signals):
        out[i, :len(s)] = s
    return torch.from_numpy(out)


def ibm_check(sources: list[np.ndarray], noises: list[np.ndarray], n_fft: int = 1024, hop: int = 512) -> dict:
    """Mean SNR of the unprocessed mixtures and of the oracle ideal-binary-mask estimates (dB)."""
    s_pad, n_pad = _pad_stack(sources), _pad_stack(noises)
    S, N = stft(s_pad, n_fft, hop), stft(n_pad, n_fft, hop)
    est = istft((S.abs() > N.abs()) * (S + N), length=s_pad.shape[1], n_fft=n_fft, hop=hop).numpy()
    ibm = [snr_db(s, est[i, :len(s)]) for i, s in enumerate(sources)]
    raw = [snr_db(s, s + n) for s, n in zip(sources, noises)]
    return {"mixture_snr_db_mean": round(float(np.mean(raw)), 3), "ibm_snr_db_mean": round(float(np.mean(ibm)), 3),
            "ibm_n_fft": n_fft, "ibm_hop": hop, "n_mixtures": len(sources)}


def mean_log_spectrum(x: np.ndarray, n_fft: int) -> np.ndarray:
    """(N, T) signals → (N, F) mean over frames of log |STFT|."""
    spec = stft(torch.from_numpy(np.asarray(x, np.float32)), n_fft, n_fft // 2).abs()
    return torch.log(spec + 1e-6).mean(-1).numpy()


def _pairs(n_speakers: int, utts: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All same-speaker pairs and as many random different-speaker pairs (balanced)."""
    spk = np.repeat(np.arange(n_speakers), utts)
    i, j = np.triu_indices(len(spk), 1)
    same = spk[i] == spk[j]
    pick = rng.choice(np.flatnonzero(~same), size=int(same.sum()), replace=False)
    idx = np.concatenate([np.flatnonzero(same), pick])
    return i[idx], j[idx], same[idx]


def _cosine(f: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    g = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
    return np.sum(g[i] * g[j], axis=1)


def speaker_baseline(train: np.ndarray, test: np.ndarray, utts: int, seed: int = 0, n_fft: int = 512) -> dict:
    """Same/different-speaker accuracy on balanced test pairs of a cosine-threshold verifier."""
    rng = np.random.default_rng(seed)
    f_tr, f_te = mean_log_spectrum(train, n_fft), mean_log_spectrum(test, n_fft)
    centre = f_tr.mean(0)
    f_tr, f_te = f_tr - centre, f_te - centre
    i, j, y = _pairs(len(train) // utts, utts, rng)
    sim = _cosine(f_tr, i, j)
    cands = np.unique(sim)
    accs = [np.mean((sim >= t) == y) for t in cands]
    thr = float(cands[int(np.argmax(accs))])
    i, j, y_te = _pairs(len(test) // utts, utts, rng)
    acc_te = float(np.mean((_cosine(f_te, i, j) >= thr) == y_te))
    return {"speaker_baseline_train_acc": round(float(np.max(accs)), 4),
            "speaker_baseline_test_acc": round(acc_te, 4), "test_pairs": int(len(y_te))}


def log_mel_means(clips: np.ndarray, sr: int, n_mels: int = 40, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    import librosa

    mel = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float32))
    power = stft(torch.from_numpy(np.asarray(clips, np.float32)), n_fft, hop).abs() ** 2
    return torch.log(mel @ power + 1e-10).mean(-1).numpy()


def keyword_logreg(clips: np.ndarray, labels: list[str], splits: list[str], sr: int, seed: int = 0,
                   n_mels: int = 40) -> dict:
    """Test accuracy of a logistic regression on mean log-mel features, and the majority-class rate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    feats = log_mel_means(clips, sr, n_mels)
    y = np.asarray(labels)
    tr, te = np.asarray(splits) == "train", np.asarray(splits) == "testing"
    scaler = StandardScaler().fit(feats[tr])
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(scaler.transform(feats[tr]), y[tr])
    acc = float(np.mean(clf.predict(scaler.transform(feats[te])) == y[te]))
    _, counts = np.unique(y[te], return_counts=True)
    return {"logreg_test_acc": round(acc, 4), "majority_rate": round(float(counts.max() / counts.sum()), 4),
            "n_classes": int(len(np.unique(y))), "n_test": int(te.sum())}
