"""Course formats built from public corpora, on tiny corpora the tests write in the native layouts.

Every "speaker" of the fixture LibriSpeech speaks on its own pitch and every noise recording is a
tone at its own frequency, so a row or a noise file can be traced back to where it came from by its
spectrum alone: row order, speaker and noise disjointness are checked on the audio, not only on what
dataset.json claims.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlsys.core.errors import DataFormatError, DownloadError, MissingDataError
from dlsys.core.params import Params
from dlsys.data import registry
from dlsys.data.audio.sets import load_speakers, load_timit
from dlsys.data.safe_pickle import load_pickle

SR = 16000
SPEAKERS = [str(s) for s in (19, 26, 103, 150, 200, 250, 302, 311, 405, 446, 587, 1034)]
VAD = {"frame_ms": 25, "hop_ms": 10, "range_db": 40.0, "min_active": 0.7}


def f0_of(spk: str) -> float:
    return 100.0 + 20.0 * SPEAKERS.index(spk)


def _speech(spk: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """0.3 s of near-silence, harmonic 'speech' on the speaker's pitch with short pauses, near-silence."""
    t = np.arange(int(seconds * SR)) / SR
    voiced = sum(np.sin(2 * np.pi * k * f0_of(spk) * t) / k for k in (1, 2, 3)) * 0.1
    gate = (np.sin(2 * np.pi * 1.5 * t) > -0.8).astype(float)  # ~20 % pauses inside the speech
    x = voiced * gate
    edge = int(0.3 * SR)
    x[:edge] = 0.0
    x[-edge:] = 0.0
    return (x + 1e-5 * rng.standard_normal(len(x))).astype(np.float32)


def write_librispeech(root: Path, subset: str = "train-clean-100", utterances: int = 2, seconds: float = 3.0) -> Path:
    rng = np.random.default_rng(0)
    base = root / "LibriSpeech" / subset
    for spk in SPEAKERS:
        chapter = 1000 + int(spk)
        for u in range(utterances):
            path = base / spk / str(chapter) / f"{spk}-{chapter}-{u:04d}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _speech(spk, seconds, rng), SR, format="FLAC")
    (root / "LibriSpeech" / "SPEAKERS.TXT").write_text(
        "; ID | SEX | SUBSET | MINUTES | NAME\n"
        + "".join(f"{s:<5}| {'F' if i % 2 else 'M'} | {subset} | 25.0 | Reader {s}\n" for i, s in enumerate(SPEAKERS)))
    return base


NOISE_HZ: dict[str, float] = {}


def write_noise(ext: Path) -> None:
    """ESC-50 clips at 44.1 kHz (two takes, A and B, of each of 6 sources) and 3 background files."""
    rng = np.random.default_rng(1)
    k = 0
    for src in range(6):
        for take in "AB":
            name = f"4-{1000 + src}-{take}-{src}.wav"
            hz = 1500.0 + 250.0 * k
            NOISE_HZ[f"esc50/audio/{name}"] = hz
            t = np.arange(int(2.0 * 44100)) / 44100
            x = 0.2 * np.sin(2 * np.pi * hz * t) + 0.001 * rng.standard_normal(len(t))
            x[-int(0.5 * 44100):] = 0.0  # ESC-50 pads short sounds with digital silence
            path = ext / "esc50" / "audio" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x, 44100, subtype="PCM_16")
            k += 1
    (ext / "esc50" / "meta").mkdir()
    (ext / "esc50" / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n"
        + "".join(f"4-{1000 + s}-{t}-{s}.wav,4,{s},cat{s},False,{1000 + s},{t}\n" for s in range(6) for t in "AB"))
    for b in range(3):
        hz = 1500.0 + 250.0 * k
        NOISE_HZ[f"speech_commands/_background_noise_/bg{b}.wav"] = hz
        t = np.arange(int(4.0 * SR)) / SR
        path = ext / "speech_commands" / "_background_noise_" / f"bg{b}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.05 * np.sin(2 * np.pi * hz * t), SR, subtype="PCM_16")
        k += 1


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


# --------------------------------------------------------------------------- speakers

def _speakers_params(**over) -> Params:
    g = {"source": "librispeech", "sr": SR, "n_train_speakers": 4, "n_test_speakers": 2,
         "utterances_per_speaker": 3, "train_samples": 4000, "test_samples": 6000, "calibration_n_fft": 256,
         "librispeech": {"subset": "train-clean-100", "vad": dict(VAD)}}
    g.update(over)
    return Params({"data": {"speakers": g}})


@pytest.fixture
def librispeech(tmp_path):
    write_librispeech(tmp_path / "data/external/librispeech")
    return tmp_path


def test_speakers_from_librispeech_rows_ordered_by_speaker_speech_only(librispeech):
    root = librispeech
    meta = registry.acquire("speakers", _speakers_params(), seed=0, root=root)
    d = load_speakers(root / "data/raw/speakers")
    assert d.train.shape == (12, 4000) and d.test.shape == (6, 6000)
    assert d.train.dtype == np.float32 and d.source == "real" and meta["builder"] == "librispeech"
    for split, rows in (("train", d.train), ("test", d.test)):
        ids = meta[f"{split}_speakers"]
        assert ids == sorted(ids, key=int)
        for i, row in enumerate(rows):  # block j of 3 rows is speaker ids[j], read from the pitch
            assert abs(peak_hz(row) - f0_of(ids[i // 3])) < 8.0, (split, i)
            # speech, not the silent edges: >= 70 % of its 25-ms frames (10-ms hop) carry the voice
            frames = np.stack([row[k:k + 400] for k in range(0, len(row) - 399, 160)])
            assert np.mean(np.sqrt(np.mean(frames ** 2, 1)) > 1e-3) >= 0.7
    assert not set(meta["train_speakers"]) & set(meta["test_speakers"])
    assert "CC BY 4.0" in meta["licence"] and "LibriSpeech train-clean-100" in meta["corpus"]
    # 3 rows from 2 utterances per speaker: several segments per utterance, and dataset.json says so
    assert meta["segments_per_utterance_max"] == 2 and "non-overlapping segments" in meta["note"]
    assert sum(len(v) for v in meta["files"].values()) == 18
    for starts in meta["files"].values():  # segments of one utterance never overlap
        assert all(b - a >= 4000 for a, b in zip(starts, starts[1:]))
    assert meta["train_sexes"]["F"] + meta["train_sexes"]["M"] == 4


def test_speakers_build_is_deterministic_under_seed(librispeech, tmp_path_factory):
    root = librispeech
    registry.acquire("speakers", _speakers_params(), seed=3, root=root)
    first = [(root / "data/raw/speakers" / f).read_bytes() for f in ("trs.pkl", "tes.pkl", "dataset.json")]
    registry.acquire("speakers", _speakers_params(), seed=3, root=root)
    again = [(root / "data/raw/speakers" / f).read_bytes() for f in ("trs.pkl", "tes.pkl", "dataset.json")]
    assert first == again
    other = registry.acquire("speakers", _speakers_params(), seed=4, root=root)
    assert (root / "data/raw/speakers/trs.pkl").read_bytes() != first[0]
    assert json.loads(first[2])["train_speakers"] != other["train_speakers"] or \
        json.loads(first[2])["test_speakers"] != other["test_speakers"]


def test_speakers_with_too_little_speech_fail_with_counts_and_leave_nothing(librispeech):
    with pytest.raises(DataFormatError, match="too little speech.*test speakers"):
        registry.acquire("speakers", _speakers_params(test_samples=32000), seed=0, root=librispeech)
    assert not (librispeech / "data/raw/speakers").exists()


def test_missing_librispeech_names_the_openslr_route(tmp_path):
    with pytest.raises(MissingDataError) as exc:
        registry.acquire("speakers", _speakers_params(), seed=0, root=tmp_path)
    msg = str(exc.value)
    assert "librispeech/LibriSpeech/train-clean-100" in msg
    assert "openslr.org/resources/12/train-clean-100.tar.gz" in msg and "2a93770f6d5c6c964bc36631d331a522" in msg


def _tarball(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "tarsrc"
    write_librispeech(src, subset="dev-clean")
    archive = tmp_path / "data/external/librispeech/dev-clean.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_placed_openslr_tarball_is_verified_then_extracted_once(tmp_path, monkeypatch):
    from dlsys.data.audio import corpora

    archive, md5 = _tarball(tmp_path)
    monkeypatch.setitem(corpora.LIBRISPEECH_MD5, "dev-clean", md5)
    p = _speakers_params(librispeech={"subset": "dev-clean", "vad": dict(VAD)})
    meta = registry.acquire("speakers", p, seed=0, root=tmp_path)
    assert meta["corpus"].startswith("LibriSpeech dev-clean") and meta["train_shape"] == [12, 4000]
    assert (tmp_path / f"data/cache/librispeech/.extracted-{md5}").exists()
    assert (tmp_path / "data/cache/librispeech/LibriSpeech/dev-clean").is_dir()


def test_placed_openslr_tarball_with_wrong_md5_is_refused(tmp_path, monkeypatch):
    from dlsys.data.audio import corpora

    _tarball(tmp_path)
    monkeypatch.setitem(corpora.LIBRISPEECH_MD5, "dev-clean", "0" * 32)
    p = _speakers_params(librispeech={"subset": "dev-clean", "vad": dict(VAD)})
    with pytest.raises(DownloadError, match="md5 mismatch"):
        registry.acquire("speakers", p, seed=0, root=tmp_path)
    assert not (tmp_path / "data/raw/speakers").exists()
    assert not (tmp_path / "data/cache/librispeech/LibriSpeech").exists()


# --------------------------------------------------------------------------- timit_denoise public

def _timit_params(**public) -> Params:
    pub = {"subset": "train-clean-100", "noise_corpora": ["esc50", "speech_commands"], "noises_per_sentence": 2,
           "vad": dict(VAD)}
    pub.update(public)
    return Params({"data": {"timit_denoise": {
        "source": "public", "sr": SR, "n_train_sentences": 6, "n_val_sentences": 2, "n_test_sentences": 2,
        "noises": ["white"], "sentence_seconds": [0.5, 0.7], "snr_db": [-5.0, 5.0], "noise_pool_seconds": 1.0,
        "calibration_n_fft": 256, "calibration_hop": 128, "public": pub}}})


@pytest.fixture
def corpora_root(tmp_path):
    write_librispeech(tmp_path / "data/external/librispeech")
    write_noise(tmp_path / "data/external")
    return tmp_path


def _int16(path: Path) -> np.ndarray:
    return sf.read(path, dtype="int16")[0].astype(np.int32)


def test_public_timit_layout_mixtures_speakers_and_noises(corpora_root):
    root = corpora_root
    meta = registry.acquire("timit_denoise", _timit_params(), seed=0, root=root)
    base = root / "data/raw/timit_denoise/timit-homework"
    assert meta["mixtures"] == {"tr": 12, "v": 4, "te": 4} and meta["builder"] == "public"
    assert sorted(p.name for p in (base / "te").iterdir()) == [f"tex{i:04d}.wav" for i in range(4)]
    for split, (xp, sp, np_) in (("tr", ("trx", "trs", "trn")), ("v", ("vx", "vs", "vn"))):
        names = sorted(p.name for p in (base / split).iterdir())
        assert names == sorted(f"{q}{i:04d}.wav" for q in (xp, sp, np_) for i in range(len(names) // 3))
        for i in range(len(names) // 3):
            x, s, n = (_int16(base / split / f"{q}{i:04d}.wav") for q in (xp, sp, np_))
            np.testing.assert_array_equal(x, s + n)  # trx = trs + trn, sample for sample
            snr = 10 * np.log10(np.sum(s.astype(float) ** 2) / np.sum(n.astype(float) ** 2))
            assert -5.1 <= snr <= 5.1
            assert 0.5 * SR - 1 <= len(x) <= 0.7 * SR + 1
            # the noise is one of this split's recordings (traced by its tone, after 44.1 -> 16 kHz)
            hz = peak_hz(n.astype(float))
            assert min(abs(hz - NOISE_HZ[f]) for f in meta["files"][split]["noise"]) < 30.0
            # the speech is one of this split's speakers
            assert min(abs(peak_hz(s.astype(float)) - f0_of(spk)) for spk in meta["speakers"][split]) < 8.0
    spk = {s: set(meta["speakers"][s]) for s in ("tr", "v", "te")}
    assert not (spk["tr"] & spk["v"] or spk["tr"] & spk["te"] or spk["v"] & spk["te"])
    noise = {s: set(meta["files"][s]["noise"]) for s in ("tr", "v", "te")}
    assert not (noise["tr"] & noise["v"] or noise["tr"] & noise["te"] or noise["v"] & noise["te"])
    for s, clips in noise.items():  # the two takes of one ESC-50 source recording stay in one split
        for c in clips:
            if "esc50" in c:
                twin = c.replace("-A-", "-B-") if "-A-" in c else c.replace("-B-", "-A-")
                assert twin in clips, (s, c)
    assert "CC BY-NC 3.0" in meta["licence"] and "CC BY 4.0" in meta["licence"]
    assert meta["corpus"] == ("LibriSpeech train-clean-100 (OpenSLR SLR12) + ESC-50 + "
                              "Speech Commands v0.02 _background_noise_")
    assert set(meta["calibration"]) == {"tr", "v"} and meta["calibration"]["v"]["n_mixtures"] == 4
    d = load_timit(root / "data/raw/timit_denoise")
    assert len(d.tr_x) == 12 and len(d.v_s) == 4 and len(d.te_x) == 4 and d.source == "real"


def test_public_timit_is_deterministic_and_snr_range_is_a_param(corpora_root):
    root = corpora_root
    base = root / "data/raw/timit_denoise/timit-homework/tr"
    registry.acquire("timit_denoise", _timit_params(), seed=1, root=root)
    first = {p.name: p.read_bytes() for p in base.iterdir()}
    registry.acquire("timit_denoise", _timit_params(), seed=1, root=root)
    assert first == {p.name: p.read_bytes() for p in base.iterdir()}
    p = _timit_params()
    p.raw("data.timit_denoise")["snr_db"] = [10.0, 10.0]
    meta = registry.acquire("timit_denoise", p, seed=1, root=root)
    assert abs(meta["calibration"]["tr"]["mixture_snr_db_mean"] - 10.0) < 0.2


def test_public_timit_noise_from_one_corpus_only(corpora_root):
    meta = registry.acquire("timit_denoise", _timit_params(noise_corpora=["esc50"]), seed=0, root=corpora_root)
    assert all(f.startswith("esc50/") for s in ("tr", "v", "te") for f in meta["files"][s]["noise"])
    assert "Speech Commands" not in meta["licence"]


def test_public_timit_missing_corpora_in_one_message(tmp_path):
    write_librispeech(tmp_path / "data/external/librispeech")
    with pytest.raises(MissingDataError) as exc:
        registry.acquire("timit_denoise", _timit_params(), seed=0, root=tmp_path)
    msg = str(exc.value)
    assert "2 real-data input(s) missing" in msg and "esc50/audio" in msg and "_background_noise_" in msg
    assert "route:" in msg
