"""A tiny end-to-end `dvc repro` of the denoising family: acquisition → features → FC, 1-D CNN (one matrix
stage), RNN and its FC mask baseline → comparison; then the frame path again without test_01's clean reference."""

import json
import zipfile

import pytest
import yaml

from dlsys.data.wav import read_wav

TINY_DATA = {
    "data.denoise": {"train_seconds": 6.0, "test_seconds": 3.0},
    "data.timit_denoise": {"n_train_sentences": 2, "n_val_sentences": 1, "n_test_sentences": 1,
                           "noises": ["white", "babble"], "noise_pool_seconds": 4.0},
}
TINY_MODELS = {
    "denoise.frame.val_seconds": 2.0,
    "denoise.fc.epochs": 2, "denoise.fc.hidden": [32, 32],
    "denoise.cnn1d.epochs": 2, "denoise.cnn1d.conv": [[4, 9, 4], [8, 5, 2]],
    "denoise.rnn.epochs": 2, "denoise.rnn.hidden": 16, "denoise.rnn.layers": 1, "denoise.rnn.t_trunc": 20,
    "denoise.mask_fc.epochs": 2, "denoise.mask_fc.hidden": [16], "denoise.mask_fc.t_trunc": 20,
}


@pytest.mark.slow
def test_denoise_family_end_to_end(repo_copy):
    params = yaml.safe_load((repo_copy.path / "params.yaml").read_text())
    updates = {}
    for group, values in TINY_DATA.items():
        node = params["data"][group.split(".")[1]]
        updates.update({f"{group}.{k}": v for k, v in values.items() if k in node})
    repo_copy.set_params({**updates, **TINY_MODELS})
    repo_copy.dvc("repro", "denoise_compare", timeout=1200)

    root = repo_copy.path
    fc = json.loads((root / "metrics/denoise/fc.json").read_text())
    rnn = json.loads((root / "metrics/denoise/rnn.json").read_text())
    cmp_ = json.loads((root / "metrics/denoise/compare.json").read_text())
    assert fc["data_source"] == rnn["data_source"] == "synthetic"
    assert fc["epochs_run"] == 2 and "held-out last 2 s" in fc["selection"]
    curve = [float(r.split(",")[2]) for r in (root / "plots/denoise/fc/curves.csv").read_text().split()[1:]]
    assert fc["best_epoch"] == 1 + curve.index(max(curve)) and abs(fc["val_snr_db"] - max(curve)) < 1e-4
    for split in ("test_01", "val"):
        assert abs(fc[f"{split}_snri_db"] - (fc[f"{split}_snr_db"] - fc[f"{split}_snr_in_db"])) < 1e-6
    assert rnn["v_snr_oracle_ibm_db"] > rnn["v_snr_in_db"]
    assert set(cmp_) >= {"fc", "cnn1d", "mask_fc", "rnn", "data_source"} and cmp_["fc"]["dataset"] == "denoise test_01"
    mask_fc = json.loads((root / "metrics/denoise/mask_fc.json").read_text())
    assert abs(cmp_["rnn_gain_over_mask_fc_db"] - (rnn["v_snr_db"] - mask_fc["v_snr_db"])) < 1e-9
    assert json.loads((root / "timings/denoise/features_timit.json").read_text())["stft_seconds"] > 0

    raw = root / "data/raw/denoise"
    n01 = len(read_wav(next(raw.glob("test*01*x*.wav"))))
    for model in ("fc", "cnn1d"):
        assert len(read_wav(root / f"audio/denoise/{model}/test_01.wav")) == n01
        assert (root / f"audio/denoise/{model}/test_02.wav").exists()
        assert (root / f"plots/denoise/{model}/curves.png").exists()
    te = sorted((root / "data/outputs/denoise/rnn/te").glob("*.wav"))
    assert len(te) == 2  # 1 test sentence x 2 noise kinds
    with zipfile.ZipFile(root / "data/outputs/denoise/rnn/te.zip") as zf:
        assert sorted(zf.namelist()) == sorted(f"te/{p.name}" for p in te)
    for name in ("snr.png", "snr.csv", "spectrograms.png"):
        assert (root / "plots/denoise/compare" / name).exists()
    assert "denoise_frame@fc" not in repo_copy.dvc("status").stdout  # everything DVC ran is up to date

    # Without test_01's clean reference the frame models still train, select and report on the tail.
    (raw / "test_01_s.wav").unlink()
    for script, *args in [("stages/denoise_features.py",), ("stages/denoise_frame.py", "fc"),
                          ("stages/denoise_compare.py",)]:
        repo_copy.stage(script, *args)
    fc2 = json.loads((root / "metrics/denoise/fc.json").read_text())
    assert "test_01_snr_db" not in fc2 and fc2["val_snr_db"] == pytest.approx(fc["val_snr_db"], abs=1e-4)
    cmp2 = json.loads((root / "metrics/denoise/compare.json").read_text())
    assert cmp2["fc"]["dataset"].startswith("denoise training tail") and cmp2["fc"]["snr_db"] == fc2["val_snr_db"]
