"""A tiny end-to-end run of the signals stages (speaker verification, keyword spotting, HAR) on hand-made
fixtures; tests/tasks/test_signals.py covers divergence and the task module in-process."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlsys.core.params import read_yaml
from dlsys.data.safe_pickle import dump_pickle
from dlsys.data.wav import write_wav

pytestmark = pytest.mark.slow
SR = 16000
COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def _speakers(root: Path) -> None:
    """Speakers = harmonic tones at their own pitch, plus noise; 6 train and 3 test speakers × 10."""
    rng = np.random.default_rng(0)
    out = root / "data/raw/speakers"
    out.mkdir(parents=True)
    for name, n_spk, n, f_lo in (("trs.pkl", 6, 4000, 100), ("tes.pkl", 3, 5000, 130)):
        t = np.arange(n) / SR
        rows = [sum(np.sin(2 * np.pi * k * (f_lo + 40 * s) * t) / k for k in (1, 2, 3))
                + 0.1 * rng.standard_normal(n) for s in range(n_spk) for _ in range(10)]
        dump_pickle(np.asarray(rows, np.float32) * 0.2, out / name)
    (out / "dataset.json").write_text(json.dumps({"source": "synthetic", "sr": SR, "utterances_per_speaker": 10}))


def _speech_commands(root: Path) -> None:
    rng = np.random.default_rng(1)
    out = root / "data/raw/speech_commands"
    lists = {"validation": [], "testing": []}
    for w, word in enumerate(COMMANDS + ["bed"]):
        (out / word).mkdir(parents=True)
        for i in range(6):
            n = int(rng.integers(12000, 17000))  # some clips shorter, some longer than 1 s
            x = 0.3 * np.sin(2 * np.pi * (200 + 60 * w) * np.arange(n) / SR) + 0.01 * rng.standard_normal(n)
            rel = f"{word}/spk{i}_nohash_0.wav"
            write_wav(out / rel, x.astype(np.float32), SR)
            if i == 4:
                lists["validation"].append(rel)
            elif i == 5:
                lists["testing"].append(rel)
    (out / "_background_noise_").mkdir()
    write_wav(out / "_background_noise_/white.wav", (0.1 * rng.standard_normal(5 * SR)).astype(np.float32), SR)
    for split, rels in lists.items():
        (out / f"{split}_list.txt").write_text("".join(r + "\n" for r in rels))
    (out / "dataset.json").write_text(json.dumps({"source": "synthetic", "sr": SR}))


def _metrics(repo, name: str) -> dict:
    return json.loads((repo.path / f"metrics/signals/{name}.json").read_text())


def test_har_matrix_via_dvc(repo_copy):
    repo_copy.set_params({"data.har.n_users": 5, "data.har.seconds_per_user": 60, "signals.har.first_test_subject": 5,
                          "signals.har.epochs": 2, "signals.har.batch_size": 64})
    (repo_copy.path / "data/external/har").mkdir(parents=True, exist_ok=True)  # acquire_har's (empty) course folder
    repo_copy.dvc("repro", "signals_har")
    expected = {"dense": 68_606, "cnn1d": 520_486}
    for kind, n_params in expected.items():
        m = _metrics(repo_copy, f"har_{kind}")
        assert m["data_source"] == "synthetic" and m["params"] == n_params
        assert m["selection"].startswith("final epoch") and "train_seconds" not in m
        plots = repo_copy.path / f"plots/signals/har_{kind}"
        rows = list(csv.DictReader(open(plots / "confusion.csv")))
        assert len(rows) == m["test_windows"] > 0
        # The headline number is the confusion matrix's diagonal, and well above chance (1/6) after 2 epochs.
        assert m["accuracy"] == pytest.approx(sum(r["actual"] == r["predicted"] for r in rows) / len(rows))
        assert m["accuracy"] > 0.3
        assert (plots / "confusion.png").stat().st_size > 0
        assert len(list(csv.DictReader(open(plots / "curves.csv")))) == 2


def test_speaker_verification_stages(repo_copy):
    _speakers(repo_copy.path)
    repo_copy.set_params({"signals.speaker.hidden": 16, "signals.speaker.embedding": 8, "signals.speaker.epochs": 3,
                          "signals.speaker.pairs_per_speaker": 12, "signals.speaker.n_val_speakers": 2})
    repo_copy.stage("stages/signals_speaker_pairs.py")
    repo_copy.stage("stages/signals_siamese.py")
    m = _metrics(repo_copy, "siamese")
    assert m["data_source"] == "synthetic"
    assert m["test_pairs"] == 3 * 2 * 12 and m["test_speakers"] == 3
    assert m["train_speakers"] == 4 and m["val_speakers"] == 2  # two of the six hold the threshold's pairs
    # Speakers differ in pitch: even 3 epochs rank same-speaker pairs above different-speaker pairs.
    assert m["roc_auc"] > 0.6 and 0.0 <= m["eer"] < 0.5
    assert "cpu_seconds" not in m and m["selection"].startswith("final epoch") and 0 < m["threshold"] < 1
    assert json.loads((repo_copy.path / "timings/signals/siamese.json").read_text())["cpu_seconds"] > 0
    plots = repo_copy.path / "plots/signals/siamese"
    roc = list(csv.DictReader(open(plots / "roc.csv")))
    assert float(roc[0]["fpr"]) == 0 and float(roc[-1]["tpr"]) == 1
    assert (plots / "verification.png").exists() and (plots / "curves.png").exists()
    curves = list(csv.DictReader(open(plots / "curves.csv")))
    assert [int(r["epoch"]) for r in curves] == [1, 2, 3]
    assert set(curves[0]) == {"epoch", "train_loss", "test_loss", "test_accuracy", "test_eer", "val_eer"}


def test_keyword_spotting_stages(repo_copy):
    _speech_commands(repo_copy.path)
    repo_copy.set_params({"signals.kws.train.epochs": 3, "signals.kws.train.batch_size": 16, "signals.kws.train.lr_drop_epoch": 2,
                          "signals.kws.background_fraction": 0.5,
                          # the kit's recipe: shifted words mixed with training background
                          "signals.kws.train.shift_frames": 5, "signals.kws.train.background_mix": 1.0})
    repo_copy.stage("stages/signals_kws_features.py")
    feats = torch.load(repo_copy.path / "data/features/signals/kws.pt", weights_only=True)
    assert feats["log_eps"] == read_yaml((repo_copy.path / "params.yaml").read_text())["signals"]["kws"]["features"]["eps"]
    repo_copy.stage("stages/signals_kws.py")
    m = _metrics(repo_copy, "kws")
    assert m["data_source"] == "synthetic"
    # 11 words × 1 test clip + round(0.5 × 11) background clips
    assert m["test_clips"] == 11 + 6
    assert set(m["per_class_accuracy"]) == set(COMMANDS) | {"unknown", "background"}
    # inverse-frequency weights: 4 train clips per word (and for "bed" = unknown), round(0.5 × 44) = 22
    # background clips
    w = m["class_weights"]
    assert w["yes"] == pytest.approx(w["unknown"])
    assert w["background"] / w["yes"] == pytest.approx(4 / 22)
    rows = list(csv.DictReader(open(repo_copy.path / "plots/signals/kws/confusion.csv")))
    assert len(rows) == m["test_clips"] and set(rows[0]) == {"actual", "predicted"}
    assert m["test_accuracy"] == pytest.approx(sum(r["actual"] == r["predicted"] for r in rows) / len(rows))
    # The model kept is the best validation epoch, and the metrics say so.
    curves = list(csv.DictReader(open(repo_copy.path / "plots/signals/kws/curves.csv")))
    best = max(curves, key=lambda r: float(r["val_accuracy"]))
    assert m["best_epoch"] == int(best["epoch"]) and m["best_val_accuracy"] == pytest.approx(float(best["val_accuracy"]))
    assert m["selection"].startswith("best val_accuracy")
