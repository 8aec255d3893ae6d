"""The four audio datasets end to end at small sizes: formats, loaders, calibration, real-mode errors."""

import json
from pathlib import Path
import shutil
import tarfile

import numpy as np
import pytest
import yaml

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.core.params import Params
from dlsys.data.audio import sets
from dlsys.data.audio.sets import load_denoise, load_speakers, load_speech_commands, load_timit
from dlsys.data.registry import acquire
from dlsys.data.safe_pickle import dump_pickle
from dlsys.data.wav import read_wav, write_wav
from dlsys.evaluation.snr import snr_db
ROOT = Path(__file__).resolve().parents[3]

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]


def params(name, **over):
    group = dict(DEFAULTS[name])
    group.update(over)
    return Params({"data": {name: group}})


def build(tmp_path, name, seed=0, **over):
    meta = acquire(name, params(name, **over), seed, root=tmp_path)
    return tmp_path / "data" / "raw" / name, meta


# ---------------------------------------------------------------- denoise

def test_denoise_format_snr_and_naming(tmp_path):
    raw, meta = build(tmp_path, "denoise", train_seconds=4.0, test_seconds=2.0)
    d = load_denoise(raw)
    assert d.source == "synthetic" and d.sr == 16000
    assert len(d.train_clean) == len(d.train_dirty) == 64000 and len(d.test_01_x) == 32000
    for arr in (d.train_clean, d.train_dirty, d.test_01_x, d.test_01_s, d.test_02_x):
        assert arr.dtype == np.float32 and arr.ndim == 1
    assert abs(snr_db(d.train_clean, d.train_dirty) - 6.5) < 1.0  # calibration: ±1 dB of the param
    assert abs(snr_db(d.test_01_s, d.test_01_x) - 6.5) < 1.0
    assert abs(meta["calibration"]["snr_db_train_dirty"] - 6.5) < 1.0
    # the other course year's names are accepted
    (raw / "test_01_x.wav").rename(raw / "test_x_01.wav")
    np.testing.assert_array_equal(load_denoise(raw).test_01_x, d.test_01_x)
    # mismatched clean/dirty lengths name both files
    write_wav(raw / "train_dirty_male.wav", d.train_dirty[:-10], 16000)
    with pytest.raises(DataFormatError, match="train_clean_male.wav.*train_dirty_male.wav"):
        load_denoise(raw)


def test_denoise_deterministic(tmp_path):
    a, _ = build(tmp_path / "a", "denoise", seed=5, train_seconds=2.0, test_seconds=1.0)
    b, _ = build(tmp_path / "b", "denoise", seed=5, train_seconds=2.0, test_seconds=1.0)
    c, _ = build(tmp_path / "c", "denoise", seed=6, train_seconds=2.0, test_seconds=1.0)
    for f in ("train_dirty_male.wav", "test_02_x.wav"):
        assert (a / f).read_bytes() == (b / f).read_bytes()
        assert (a / f).read_bytes() != (c / f).read_bytes()


# ---------------------------------------------------------------- timit_denoise

def test_timit_layout_exact_mixtures_and_ibm_calibration(tmp_path):
    raw, meta = build(tmp_path, "timit_denoise", n_train_sentences=3, n_val_sentences=1, n_test_sentences=1,
                      noise_pool_seconds=4.0)
    t = load_timit(raw)
    k = len(DEFAULTS["timit_denoise"]["noises"])
    assert len(t.tr_x) == len(t.tr_s) == len(t.tr_n) == 3 * k and len(t.v_x) == k and len(t.te_x) == k
    assert t.tr_names[:2] == ["trx0000", "trx0001"] and t.te_names[0] == "tex0000"
    assert (raw / "timit-homework" / "v" / "vs0000.wav").exists()
    for x, s, n in zip(t.tr_x, t.tr_s, t.tr_n):
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, s + n)  # mixture = source + noise, sample for sample
    cal = meta["calibration"]
    assert cal["mixture_snr_db_mean"] < 5.0 and cal["ibm_snr_db_mean"] >= 10.0
    # a missing source file is named
    (raw / "timit-homework" / "tr" / "trs0001.wav").unlink()
    with pytest.raises(DataFormatError, match="trs0001.wav"):
        load_timit(raw)


def test_timit_rejects_unknown_noise(tmp_path):
    from dlsys.core.errors import UserError

    with pytest.raises(UserError, match="unknown noise kind 'rain'"):
        build(tmp_path, "timit_denoise", noises=["white", "rain"])


# ---------------------------------------------------------------- speakers

def test_speakers_shapes_order_disjoint_and_baseline(tmp_path, monkeypatch):
    seen = []
    real = sets.make_speakers

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append([s.sid for s in out])
        return out

    monkeypatch.setattr(sets, "make_speakers", spy)
    raw, meta = build(tmp_path, "speakers", n_train_speakers=16, n_test_speakers=10, utterances_per_speaker=5,
                      train_samples=12000, test_samples=14000)
    d = load_speakers(raw)
    assert d.train.shape == (80, 12000) and d.test.shape == (50, 14000) and d.train.dtype == np.float32
    assert d.utterances_per_speaker == 5 and d.source == "synthetic"
    assert not set(seen[0]) & set(seen[1])  # train and test speakers are disjoint
    # rows are ordered by speaker: same-speaker rows are more alike than rows of different speakers
    from dlsys.data.audio.calibration import mean_log_spectrum

    f = mean_log_spectrum(d.train, 512)
    f = f - f.mean(0)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    sim = f @ f.T
    spk = np.repeat(np.arange(16), 5)
    same = (spk[:, None] == spk[None]) & ~np.eye(80, dtype=bool)
    assert sim[same].mean() > sim[spk[:, None] != spk[None]].mean() + 0.05
    acc = meta["calibration"]["speaker_baseline_test_acc"]
    assert 0.55 <= acc <= 0.90


def test_speakers_bad_pickle_named(tmp_path):
    raw, _ = build(tmp_path, "speakers", n_train_speakers=2, n_test_speakers=2, utterances_per_speaker=2,
                   train_samples=2000, test_samples=2000)
    dump_pickle(np.zeros((3, 100), np.float32), raw / "tes.pkl")
    with pytest.raises(DataFormatError, match="tes.pkl"):
        load_speakers(raw)


# ---------------------------------------------------------------- speech_commands

def test_speech_commands_layout_splits_and_logreg(tmp_path):
    raw, meta = build(tmp_path, "speech_commands", clips_per_command=24, clips_per_unknown=12,
                      unknown_words=["bed", "bird", "cat"], n_speakers=30, background_seconds=2.0)
    sc = load_speech_commands(raw)
    assert len(sc.clips) == 10 * 24 + 3 * 12
    assert set(sc.words) == set(DEFAULTS["speech_commands"]["commands"]) | {"bed", "bird", "cat"}
    assert all(not c.startswith("_background_noise_") for c in sc.clips)
    assert len(sc.background) == len(DEFAULTS["speech_commands"]["background_noises"])
    assert set(sc.splits) == {"train", "validation", "testing"}
    listed = set((raw / "testing_list.txt").read_text().split())
    assert {c for c, s in zip(sc.clips, sc.splits) if s == "testing"} == listed
    # speaker-disjoint splits (speaker = the hash before _nohash_)
    by_split = {s: {c.split("/")[1].split("_nohash_")[0] for c, s2 in zip(sc.clips, sc.splits) if s2 == s}
                for s in ("train", "validation", "testing")}
    assert not by_split["train"] & by_split["testing"] and not by_split["train"] & by_split["validation"]
    x = read_wav(sc.root / sc.clips[0], 16000)
    assert x.shape == (16000,) and x.dtype == np.float32
    cal = meta["calibration"]
    assert cal["logreg_test_acc"] > 2 * cal["majority_rate"] and cal["logreg_test_acc"] < 0.95


def test_speech_commands_recording_conditions_are_params(tmp_path):
    """channel_tilt_db, timbre_db and accent change the voices and channels, never the words, speakers or
    splits; with the tilt at 0 no extra random number is drawn (the older sets come back exactly)."""
    small = dict(clips_per_command=3, clips_per_unknown=2, unknown_words=["bed"], n_speakers=9,
                 background_seconds=2.0)
    base, _ = build(tmp_path / "a", "speech_commands", **small, channel_tilt_db=0.0)
    tilted, _ = build(tmp_path / "b", "speech_commands", **small, channel_tilt_db=6.0)
    accented, _ = build(tmp_path / "c", "speech_commands", **small, channel_tilt_db=0.0, accent=0.2, timbre_db=6.0)
    again, _ = build(tmp_path / "d", "speech_commands", **small, channel_tilt_db=0.0)
    sets_ = [load_speech_commands(r) for r in (base, tilted, accented, again)]
    assert all(s.clips == sets_[0].clips and s.splits == sets_[0].splits for s in sets_)
    clip = sets_[0].clips[0]
    wav = [read_wav(r / clip, 16000) for r in (base, tilted, accented, again)]
    assert np.array_equal(wav[0], wav[3])
    assert not np.allclose(wav[0], wav[1]) and not np.allclose(wav[0], wav[2])
    with pytest.raises(Exception, match="data.speech_commands.accent"):
        build(tmp_path / "e", "speech_commands", **small, accent=-1.0)


def test_speakers_accent_spreads_formant_targets():
    from dlsys.data.audio.speech import make_speakers
    flat = make_speakers(np.random.default_rng(0), 4, accent=0.0)
    assert all(np.array_equal(s.idio, np.ones_like(s.idio)) for s in flat)
    wide = make_speakers(np.random.default_rng(0), 40, accent=0.2)
    narrow = make_speakers(np.random.default_rng(0), 40, accent=0.02)
    spread = lambda spk: np.std(np.log(np.stack([s.idio for s in spk])))  # noqa: E731
    assert spread(wide) == pytest.approx(10 * spread(narrow), rel=0.05)


def test_speech_commands_real_install_from_archive(tmp_path):
    src = tmp_path / "src"
    for rel in ("yes/aa_nohash_0.wav", "no/bb_nohash_0.wav", "_background_noise_/white_noise.wav"):
        write_wav(src / rel, np.zeros(16000, np.float32), 16000)
    (src / "validation_list.txt").write_text("no/bb_nohash_0.wav\n")
    (src / "testing_list.txt").write_text("")
    archive = tmp_path / sets.SC_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        for p in src.rglob("*"):
            tar.add(p, arcname="./" + p.relative_to(src).as_posix(), recursive=False)
    out = tmp_path / "out"
    out.mkdir()
    summary = sets.install_speech_commands({sets.SC_ARCHIVE: archive}, out, params("speech_commands").sub(
        "data.speech_commands"))
    assert summary["clips"] == 2
    (out / "dataset.json").write_text(json.dumps({"source": "real", "sr": 16000}))
    sc = load_speech_commands(out)
    assert sc.clips == ["no/bb_nohash_0.wav", "yes/aa_nohash_0.wav"] and sc.splits == ["validation", "train"]
    assert sc.background == ["_background_noise_/white_noise.wav"] and sc.source == "real"


def test_speech_commands_download_has_published_checksum():
    from dlsys.data.registry import get_spec

    (dl,) = get_spec("speech_commands").downloads
    assert dl.sha256 and len(dl.sha256) == 64 and dl.urls[0].endswith("speech_commands_v0.02.tar.gz")


# ---------------------------------------------------------------- real mode

@pytest.mark.parametrize("name, expected", [
    ("denoise", ["train_clean_male.wav", "train_dirty_male.wav", "test_01_x.wav", "test_02_x.wav"]),
    ("timit_denoise", ["timit-homework/tr", "timit-homework/v", "timit-homework/te"]),
    ("speakers", ["trs.pkl", "tes.pkl"]),
])
def test_real_mode_names_every_missing_course_file(tmp_path, name, expected):
    with pytest.raises(MissingDataError) as exc:
        acquire(name, params(name, source="real"), 0, root=tmp_path)
    for f in expected:
        assert f in str(exc.value)
    assert not (tmp_path / "data" / "raw" / name).exists()


def test_real_denoise_accepts_other_year_names(tmp_path):
    ext = tmp_path / "data" / "external" / "denoise"
    x = np.zeros(1600, np.float32)
    for f in ("train_clean_male.wav", "train_dirty_male.wav", "test_x_01.wav", "test_s_01.wav", "test_x_02.wav"):
        write_wav(ext / f, x, 16000)
    meta = acquire("denoise", params("denoise", source="real"), 0, root=tmp_path)
    d = load_denoise(tmp_path / "data" / "raw" / "denoise")
    assert meta["source"] == d.source == "real" and len(d.test_01_x) == 1600


def test_real_speakers_and_timit_install(tmp_path):
    ext = tmp_path / "data" / "external"
    rows = np.random.default_rng(0).standard_normal((20, 300)).astype(np.float32) * 0.1
    dump_pickle(rows, ext / "speakers" / "trs.pkl")
    dump_pickle(rows[:10], ext / "speakers" / "tes.pkl")
    acquire("speakers", params("speakers", source="real"), 0, root=tmp_path)
    d = load_speakers(tmp_path / "data" / "raw" / "speakers")
    np.testing.assert_array_equal(d.train, rows)
    th = ext / "timit_denoise" / "timit-homework"
    for split, names in (("tr", ("trx", "trs", "trn")), ("v", ("vx", "vs", "vn")), ("te", ("tex",))):
        for n in names:
            write_wav(th / split / f"{n}0000.wav", np.zeros(800, np.float32), 16000)
    meta = acquire("timit_denoise", params("timit_denoise", source="real"), 0, root=tmp_path)
    assert meta["mixtures"] == {"tr": 1, "v": 1, "te": 1}
    assert load_timit(tmp_path / "data" / "raw" / "timit_denoise").source == "real"


@pytest.mark.slow
def test_acquire_stage_end_to_end(repo_copy):
    repo_copy.set_params({"data.denoise.train_seconds": 3.0, "data.denoise.test_seconds": 1.0})
    repo_copy.dvc("repro", "acquire_denoise")
    m = json.loads((repo_copy.path / "metrics" / "data" / "denoise.json").read_text())
    assert m["data_source"] == "synthetic" and abs(m["calibration"]["snr_db_train_dirty"] - 6.5) < 1.0
    plots = repo_copy.path / "plots" / "data" / "denoise"
    audio = repo_copy.path / "audio" / "data" / "denoise"
    assert (plots / "spectrograms.png").stat().st_size > 1000 and len(list(audio.glob("*.wav"))) == 3
    assert not list(plots.glob("*.wav")), "listening examples belong under audio/, not plots/"
