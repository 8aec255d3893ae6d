"""The four audio datasets (denoise, timit_denoise, speakers, speech_commands): specs, generators, loaders.

Each writes `data/raw/<name>/` in exactly the layout and format of the course's / published files
(16-bit PCM mono WAV at 16 kHz, float32 pickles), so the loaders below run on real files unchanged.
Mixtures are built on the 16-bit grid, so a written mixture equals source + noise sample for sample.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dlsys.core.errors import DataFormatError, MissingDataError, UserError
from dlsys.core.params import Params
from dlsys.data.audio import calibration
from dlsys.data.audio.keywords import COMMANDS, phones
from dlsys.data.audio.speech_commands import FOLDER as SC_FOLDER, install_folder as install_sc_folder
from dlsys.data.audio.noise import NOISE_KINDS, make_noise, scale_to_snr
from dlsys.data.audio.speech import (channel_tilt, fit_length, make_speakers, room_noise, speak_seconds,
                                     synthesize)
from dlsys.data.registry import (CourseFile, DatasetSpec, Download, copy_tree, dataset_source, max_array_mb,
                                 read_dataset_meta, register)
from dlsys.data.wav import DEFAULT_SR, quantize16, read_wav, write_wav

log = logging.getLogger(__name__)

MIX_PEAK = 0.99          # a mixture is scaled down (source and noise alike) if its peak would exceed this
COURSE_LICENCE = "course homework data: no public licence or URL; obtain it from the course materials"


# --------------------------------------------------------------------------- shared helpers

def rng_for(seed: int, name: str, part: str = "") -> np.random.Generator:
    """An independent stream per (global seed, dataset, part)."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), zlib.crc32(part.encode())])


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source, noise, mixture) on the 16-bit grid with mixture == source + noise exactly, at `snr_db`."""
    n = scale_to_snr(clean, noise, snr_db).astype(np.float64)
    s = np.asarray(clean, np.float64)
    peak = float(np.max(np.abs(s + n))) if len(s) else 0.0
    g = min(1.0, MIX_PEAK / peak) if peak > 0 else 1.0
    s_q, n_q = quantize16(s * g), quantize16(n * g)
    return s_q, n_q, (s_q + n_q).astype(np.float32)


class NoisePool:
    """Per kind, one long noise recording (generated on first use); mixtures take random segments of it."""

    def __init__(self, kinds: list[str], seconds: float, sr: int, rng: np.random.Generator):
        self.kinds, self.n, self.sr, self.rng = kinds, int(seconds * sr), sr, rng
        self.pool: dict[str, np.ndarray] = {}

    def segment(self, kind: str, n: int) -> np.ndarray:
        if kind not in self.pool:
            self.pool[kind] = make_noise(kind, max(self.n, n), self.sr, self.rng)
        src = self.pool[kind]
        start = int(self.rng.integers(0, len(src) - n + 1))
        return src[start:start + n]


def _range(p: Params, key: str, lo: float | None = None) -> tuple[float, float]:
    a, b = p.list(key, item_type=(int, float), min_len=2, lo=lo)[:2]  # explicit: see Params.list
    if a > b:
        raise UserError(f"params.yaml: '{p._key(key)}' must be [low, high] with low <= high, got {[a, b]}")
    return float(a), float(b)


def _sr(raw_dir: Path) -> int:
    sr = read_dataset_meta(raw_dir, required=False).get("sr", DEFAULT_SR)
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
        raise DataFormatError(f"{Path(raw_dir) / 'dataset.json'}: 'sr' must be a positive integer, got {sr!r}")
    return sr


# --------------------------------------------------------------------------- denoise

DENOISE_FILES = {
    "train_clean": "train_clean_male.wav",
    "train_dirty": "train_dirty_male.wav",
    "test_01_x": "test_01_x.wav",
    "test_01_s": "test_01_s.wav",
    "test_02_x": "test_02_x.wav",
}
DENOISE_ALTERNATIVES = {"test_01_x": ("test_x_01.wav",), "test_01_s": ("test_s_01.wav",),
                        "test_02_x": ("test_x_02.wav",)}


@dataclass
class DenoiseData:
    train_clean: np.ndarray
    train_dirty: np.ndarray
    test_01_x: np.ndarray
    test_01_s: np.ndarray | None  # the clean reference of test_01 is optional (the course's students lacked it)
    test_02_x: np.ndarray
    sr: int
    source: str


DENOISE_OPTIONAL = ("test_01_s",)


def _denoise_path(raw_dir: Path, key: str) -> Path | None:
    for name in (DENOISE_FILES[key], *DENOISE_ALTERNATIVES.get(key, ())):
        if (raw_dir / name).exists():
            return raw_dir / name
    if key in DENOISE_OPTIONAL:
        return None
    raise MissingDataError(f"{raw_dir / DENOISE_FILES[key]}: not found (run dvc repro acquire_denoise)")


def load_denoise(raw_dir: str | Path = "data/raw/denoise") -> DenoiseData:
    raw_dir = Path(raw_dir)
    sr = _sr(raw_dir)
    paths = {k: _denoise_path(raw_dir, k) for k in DENOISE_FILES}
    x = {k: (read_wav(p, sr) if p is not None else None) for k, p in paths.items()}
    for clean, dirty in (("train_clean", "train_dirty"), ("test_01_s", "test_01_x")):
        if x[clean] is not None and len(x[clean]) != len(x[dirty]):
            raise DataFormatError(f"{paths[clean]} ({len(x[clean])} samples) and {paths[dirty]} "
                                  f"({len(x[dirty])} samples) must have the same length")
    return DenoiseData(**x, sr=sr, source=dataset_source(raw_dir))


def _speak_long(speaker, rng: np.random.Generator, seconds: float, sr: int, sentence_s: tuple[float, float],
                gap_s: tuple[float, float]) -> np.ndarray:
    """Sentences separated by pauses until `seconds`, cropped to the exact length."""
    parts, total = [], 0
    n = int(round(seconds * sr))
    while total < n:
        y, _ = speak_seconds(speaker, rng, float(rng.uniform(*sentence_s)), sr)
        gap = room_noise(int(rng.uniform(*gap_s) * sr), y, rng)
        parts += [y, gap]
        total += len(y) + len(gap)
    return fit_length(np.concatenate(parts), n, rng)


def generate_denoise(out: Path, p: Params, seed: int) -> dict:
    sr = p.int("sr", lo=8000)
    snr = p.float("snr_db")
    sentence_s, gap_s = _range(p, "sentence_seconds", lo=0.5), _range(p, "gap_seconds", lo=0.0)
    rng = rng_for(seed, "denoise")
    voice, other = make_speakers(rng, 2, sexes="m")
    clean = {
        "train_clean": _speak_long(voice, rng, p.float("train_seconds", lo=1.0), sr, sentence_s, gap_s),
        "test_01_s": _speak_long(voice, rng, p.float("test_seconds", lo=1.0), sr, sentence_s, gap_s),
        "test_02_s": _speak_long(other, rng, p.float("test_seconds", lo=1.0), sr, sentence_s, gap_s),
    }
    files, snrs = {}, {}
    for key, dirty in (("train_clean", "train_dirty"), ("test_01_s", "test_01_x"), ("test_02_s", "test_02_x")):
        s, n, x = mix(clean[key], make_noise("chip_crunch", len(clean[key]), sr, rng), snr)
        files[dirty] = x
        if key != "test_02_s":  # test_02 has no clean reference, as in the course
            files[key] = s
        snrs[dirty] = calibration.snr(s, x)
    for key, name in DENOISE_FILES.items():
        write_wav(out / name, files[key], sr)
    return {"sr": sr, "durations_s": {k: round(len(v) / sr, 2) for k, v in files.items()},
            "calibration": {"snr_db_param": snr, **{f"snr_db_{k}": round(v, 3) for k, v in snrs.items()}}}


def install_denoise(files: dict[str, Path], out: Path, p: Params) -> dict:
    sr = p.int("sr", lo=8000)
    lengths = {}
    for key, name in DENOISE_FILES.items():
        if name not in files:  # an optional file the user does not have
            continue
        src = files[name]
        lengths[key] = len(read_wav(src, sr))  # validates the file
        shutil.copyfile(src, out / name)
    for clean, dirty in (("train_clean", "train_dirty"), ("test_01_s", "test_01_x")):
        if clean in lengths and lengths[clean] != lengths[dirty]:
            raise DataFormatError(f"{files[DENOISE_FILES[clean]]} and {files[DENOISE_FILES[dirty]]}: "
                                  f"lengths differ ({lengths[clean]} vs {lengths[dirty]} samples)")
    summary = {"sr": sr, "durations_s": {k: round(v / sr, 2) for k, v in lengths.items()}}
    if "test_01_s" not in lengths:
        summary["note"] = ("no test_01_s.wav: test_01 has no clean reference, so the frame denoisers report "
                           "SNR only on the held-out tail of the training pair")
    return summary


register(DatasetSpec(
    name="denoise", generate=generate_denoise, install_real=install_denoise, licence=COURSE_LICENCE,
    course_files=[
        CourseFile("train_clean_male.wav", "≈78.7 s of clean male speech, 16 kHz mono (training target)"),
        CourseFile("train_dirty_male.wav", "the same speech plus chip-crunching noise (≈6.5 dB SNR), 16 kHz mono"),
        CourseFile("test_01_x.wav", "noisy test speech 1 (same noise), 16 kHz mono", ("test_x_01.wav",)),
        CourseFile("test_01_s.wav", "clean reference of test_01_x.wav, 16 kHz mono (optional)", ("test_s_01.wav",),
                   optional=True),
        CourseFile("test_02_x.wav", "noisy test speech 2 (a different male voice, no clean reference)",
                   ("test_x_02.wav",)),
    ],
    validate=load_denoise, preview="denoise", audio=True,
))


# --------------------------------------------------------------------------- timit_denoise

TIMIT_DIR = "timit-homework"
TIMIT_SPLITS = {"tr": ("trx", "trs", "trn"), "v": ("vx", "vs", "vn"), "te": ("tex", None, None)}


@dataclass
class TimitData:
    tr_x: list[np.ndarray]
    tr_s: list[np.ndarray]
    tr_n: list[np.ndarray]
    v_x: list[np.ndarray]
    v_s: list[np.ndarray]
    v_n: list[np.ndarray]
    te_x: list[np.ndarray]
    tr_names: list[str]
    v_names: list[str]
    te_names: list[str]
    sr: int
    source: str


def _read_split(folder: Path, prefixes: tuple, sr: int) -> tuple[list, list, list, list[str]]:
    xp, sp, np_ = prefixes
    if not folder.is_dir():
        raise MissingDataError(f"{folder}: folder not found (run dvc repro acquire_timit_denoise)")
    mixtures = sorted(folder.glob(f"{xp}*.wav"))
    if not mixtures:
        raise DataFormatError(f"{folder}: no {xp}*.wav mixtures found")
    xs, ss, ns, names = [], [], [], []
    for path in mixtures:
        ident = path.stem[len(xp):]
        x = read_wav(path, sr)
        xs.append(x)
        names.append(path.stem)
        for prefix, bucket in ((sp, ss), (np_, ns)):
            if prefix is None:
                continue
            other = folder / f"{prefix}{ident}.wav"
            if not other.exists():
                raise DataFormatError(f"{other}: missing (the source/noise of {path.name})")
            y = read_wav(other, sr)
            if len(y) != len(x):
                raise DataFormatError(f"{other} ({len(y)} samples) and {path} ({len(x)} samples) differ in length")
            bucket.append(y)
    return xs, ss, ns, names


def load_timit(raw_dir: str | Path = "data/raw/timit_denoise") -> TimitData:
    raw_dir = Path(raw_dir)
    sr = _sr(raw_dir)
    root = raw_dir / TIMIT_DIR
    tr = _read_split(root / "tr", TIMIT_SPLITS["tr"], sr)
    v = _read_split(root / "v", TIMIT_SPLITS["v"], sr)
    te = _read_split(root / "te", TIMIT_SPLITS["te"], sr)
    return TimitData(tr_x=tr[0], tr_s=tr[1], tr_n=tr[2], v_x=v[0], v_s=v[1], v_n=v[2], te_x=te[0],
                     tr_names=tr[3], v_names=v[3], te_names=te[3], sr=sr, source=dataset_source(raw_dir))


def generate_timit(out: Path, p: Params, seed: int) -> dict:
    sr = p.int("sr", lo=8000)
    kinds = p.list("noises", item_type=str, min_len=1)
    for k in kinds:
        if k not in NOISE_KINDS:
            raise UserError(f"params.yaml: '{p._key('noises')}': unknown noise kind {k!r}; known: "
                            f"{', '.join(NOISE_KINDS)}")
    dur, snr = _range(p, "sentence_seconds", lo=0.5), _range(p, "snr_db")
    pool_s = p.float("noise_pool_seconds", lo=1.0)
    counts = {"tr": p.int("n_train_sentences", lo=1), "v": p.int("n_val_sentences", lo=1),
              "te": p.int("n_test_sentences", lo=1)}
    speaker_offset = {"tr": 0, "v": 100_000, "te": 200_000}  # one new speaker per sentence: disjoint splits
    summary: dict = {"sr": sr, "noises": kinds, "mixtures": {}}
    tr_s, tr_n = [], []
    for split, n_sent in counts.items():
        rng = rng_for(seed, "timit_denoise", split)
        folder = out / TIMIT_DIR / split
        folder.mkdir(parents=True)
        xp, sp, np_ = TIMIT_SPLITS[split]
        speakers = make_speakers(rng, n_sent, start_id=speaker_offset[split])
        pools = NoisePool(kinds, pool_s, sr, rng)  # one pool per split: no noise shared across splits
        for i, spk in enumerate(tqdm(speakers, desc=f"timit {split}", leave=False)):
            clean, _ = speak_seconds(spk, rng, float(rng.uniform(*dur)), sr)
            for k, kind in enumerate(kinds):
                s, n, x = mix(clean, pools.segment(kind, len(clean)), float(rng.uniform(*snr)))
                ident = f"{i * len(kinds) + k:04d}"
                write_wav(folder / f"{xp}{ident}.wav", x, sr, atomic=False)  # out is a temporary dir
                if sp is not None:
                    write_wav(folder / f"{sp}{ident}.wav", s, sr, atomic=False)
                    write_wav(folder / f"{np_}{ident}.wav", n, sr, atomic=False)
                if split == "tr":
                    tr_s.append(s)
                    tr_n.append(n)
        summary["mixtures"][split] = n_sent * len(kinds)
    summary["calibration"] = calibration.ibm_check(tr_s, tr_n, n_fft=p.int("calibration_n_fft", lo=16),
                                                   hop=p.int("calibration_hop", lo=1))
    return summary


def install_timit(files: dict[str, Path], out: Path, p: Params) -> dict:
    sr = p.int("sr", lo=8000)
    for split, prefixes in TIMIT_SPLITS.items():  # errors name the user's files, not the copies
        _read_split(files[f"{TIMIT_DIR}/{split}"], prefixes, sr)
    counts = {}
    for split in TIMIT_SPLITS:
        copy_tree(files[f"{TIMIT_DIR}/{split}"], out / TIMIT_DIR / split)  # links refused, never followed
        counts[split] = len(list((out / TIMIT_DIR / split).glob(f"{TIMIT_SPLITS[split][0]}*.wav")))
    return {"sr": p.int("sr", lo=8000), "mixtures": counts}


register(DatasetSpec(
    name="timit_denoise", generate=generate_timit, install_real=install_timit, licence=COURSE_LICENCE,
    course_files=[
        CourseFile(f"{TIMIT_DIR}/tr", "folder of training mixtures trx*.wav with their speech trs*.wav and "
                   "noise trn*.wav (1200 each, 16 kHz mono)", folder=True),
        CourseFile(f"{TIMIT_DIR}/v", "folder of validation mixtures vx*.wav with vs*.wav and vn*.wav", folder=True),
        CourseFile(f"{TIMIT_DIR}/te", "folder of test mixtures tex*.wav (no sources)", folder=True),
    ],
    validate=load_timit, preview="timit_denoise", audio=True,
))


# --------------------------------------------------------------------------- speakers

SPEAKER_FILES = {"train": "trs.pkl", "test": "tes.pkl"}


@dataclass
class SpeakerData:
    train: np.ndarray            # float32 (speakers × utterances, samples), rows ordered by speaker
    test: np.ndarray
    utterances_per_speaker: int
    sr: int
    source: str


def _read_speaker_pickle(path: Path, utts: int) -> np.ndarray:
    from dlsys.data.safe_pickle import load_pickle

    arr = load_pickle(path, max_array_mb=max_array_mb(path.parent))
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "buif":
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise DataFormatError(f"{path}: expected a real-valued utterances × samples matrix, got {got}")
    arr = arr.astype(np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[0] % utts:
        raise DataFormatError(f"{path}: expected a matrix with a multiple of {utts} rows (utterances × samples), "
                              f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataFormatError(f"{path}: contains NaN or infinite samples")
    return arr


def load_speakers(raw_dir: str | Path = "data/raw/speakers") -> SpeakerData:
    raw_dir = Path(raw_dir)
    utts = read_dataset_meta(raw_dir, required=False).get("utterances_per_speaker", 10)
    if isinstance(utts, bool) or not isinstance(utts, int) or utts < 1:
        raise DataFormatError(f"{raw_dir / 'dataset.json'}: 'utterances_per_speaker' must be a positive integer")
    return SpeakerData(_read_speaker_pickle(raw_dir / SPEAKER_FILES["train"], utts),
                       _read_speaker_pickle(raw_dir / SPEAKER_FILES["test"], utts), utts, _sr(raw_dir),
                       dataset_source(raw_dir))


def _speaker_rows(speakers, utts: int, samples: int, sr: int, rng: np.random.Generator,
                  snr: tuple[float, float], tilt_db: float, desc: str) -> np.ndarray:
    rows = np.zeros((len(speakers) * utts, samples), np.float32)
    for i, spk in enumerate(tqdm(speakers, desc=desc, leave=False)):
        for j in range(utts):
            y, _ = speak_seconds(spk, rng, samples / sr, sr, pause_prob=0.1)
            y = channel_tilt(y, float(rng.uniform(-tilt_db, tilt_db)))
            _, _, x = mix(y, make_noise("pink", samples, sr, rng), float(rng.uniform(*snr)))
            rows[i * utts + j] = x
    return rows


def generate_speakers(out: Path, p: Params, seed: int) -> dict:
    from dlsys.data.safe_pickle import dump_pickle

    sr = p.int("sr", lo=8000)
    utts = p.int("utterances_per_speaker", lo=2)
    snr, tilt = _range(p, "noise_snr_db"), p.float("channel_tilt_db", lo=0.0)
    rng_tr, rng_te = rng_for(seed, "speakers", "train"), rng_for(seed, "speakers", "test")
    n_tr, n_te = p.int("n_train_speakers", lo=2), p.int("n_test_speakers", lo=2)
    timbre = p.float("timbre_db", lo=0.0)
    train_spk = make_speakers(rng_tr, n_tr, start_id=0, timbre_db=timbre)
    test_spk = make_speakers(rng_te, n_te, start_id=n_tr, timbre_db=timbre)  # disjoint ids, independent voices
    train = _speaker_rows(train_spk, utts, p.int("train_samples", lo=1000), sr, rng_tr, snr, tilt, "speakers tr")
    test = _speaker_rows(test_spk, utts, p.int("test_samples", lo=1000), sr, rng_te, snr, tilt, "speakers te")
    dump_pickle(train, out / SPEAKER_FILES["train"])
    dump_pickle(test, out / SPEAKER_FILES["test"])
    return {"sr": sr, "utterances_per_speaker": utts, "train_shape": list(train.shape),
            "test_shape": list(test.shape),
            "calibration": calibration.speaker_baseline(train, test, utts, seed=seed,
                                                        n_fft=p.int("calibration_n_fft", lo=16))}


def install_speakers(files: dict[str, Path], out: Path, p: Params) -> dict:
    utts = p.int("utterances_per_speaker", lo=2)
    shapes = {}
    for key, name in SPEAKER_FILES.items():
        shapes[f"{key}_shape"] = list(_read_speaker_pickle(files[name], utts).shape)
        shutil.copyfile(files[name], out / name)
    return {"sr": p.int("sr", lo=8000), "utterances_per_speaker": utts, **shapes}


register(DatasetSpec(
    name="speakers", generate=generate_speakers, install_real=install_speakers, licence=COURSE_LICENCE,
    course_files=[
        CourseFile("trs.pkl", "float32 matrix 500×16180: 50 training speakers × 10 utterances, rows ordered by speaker"),
        CourseFile("tes.pkl", "float32 matrix 200×22631: 20 other speakers × 10 utterances, rows ordered by speaker"),
    ],
    validate=load_speakers, preview="speakers", audio=True, pickled=True,
))


# --------------------------------------------------------------------------- speech_commands

BACKGROUND = "_background_noise_"
SC_LISTS = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
SC_ARCHIVE = "speech_commands_v0.02.tar.gz"


@dataclass
class SpeechCommands:
    root: Path
    clips: list[str]          # relative paths word/file.wav (background excluded)
    words: list[str]          # the folder (word) of each clip
    splits: list[str]         # "train" | "validation" | "testing"
    background: list[str]     # relative paths under _background_noise_/
    sr: int
    source: str

    def read(self, rel: str) -> np.ndarray:
        """One clip (a path relative to the dataset root) at the dataset's rate."""
        return read_wav(self.root / rel, self.sr)


def validate_speech_commands(raw_dir: str | Path) -> SpeechCommands:
    """The dataset, after reading every clip and background file and checking the split lists."""
    d = load_speech_commands(raw_dir)
    known = set(d.clips)
    for name in SC_LISTS.values():
        listed = [line.strip() for line in (d.root / name).read_text().splitlines() if line.strip()]
        stray = [rel for rel in listed if rel not in known]
        if stray:
            raise DataFormatError(f"{d.root / name}: lists {len(stray)} clip(s) that do not exist, e.g. {stray[0]}")
    for rel in tqdm(d.clips + d.background, desc="checking speech_commands", leave=False):
        d.read(rel)
    return d


def load_speech_commands(raw_dir: str | Path = "data/raw/speech_commands") -> SpeechCommands:
    root = Path(raw_dir)
    if not root.is_dir():
        raise MissingDataError(f"{root}: not found (run dvc repro acquire_speech_commands)")
    lists = {}
    for split, name in SC_LISTS.items():
        if not (root / name).is_file():
            raise DataFormatError(f"{root / name}: missing or not a file (the Speech Commands split list)")
        lists.update({line.strip(): split for line in (root / name).read_text().splitlines() if line.strip()})
    clips = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav") if p.parent.name != BACKGROUND)
    if not clips:
        raise DataFormatError(f"{root}: no word folders with .wav clips")
    background = sorted(p.relative_to(root).as_posix() for p in (root / BACKGROUND).glob("*.wav"))
    return SpeechCommands(root=root, clips=clips, words=[c.split("/")[0] for c in clips],
                          splits=[lists.get(c, "train") for c in clips], background=background,
                          sr=_sr(root), source=dataset_source(root))


def generate_speech_commands(out: Path, p: Params, seed: int) -> dict:
    sr = p.int("sr", lo=8000)
    n = p.int("clip_samples", lo=1000)
    commands = p.list("commands", item_type=str, min_len=1)
    unknown = p.list("unknown_words", item_type=str)
    for w in commands + unknown:
        phones(w)  # unknown word → clear error before any work
    snr = _range(p, "noise_snr_db")
    rate, pitch = _range(p, "rate_range", lo=0.1), _range(p, "pitch_range", lo=0.1)
    tilt = p.float("channel_tilt_db", lo=0.0)
    rng = rng_for(seed, "speech_commands")
    # Channels from their own stream: the tilt setting changes how clips sound, never which clips exist.
    channel_rng = rng_for(seed, "speech_commands", "channel")

    # Background files first: clips take their noise from them, as augmentation in the real set does.
    bg_kinds = p.list("background_noises", item_type=str, min_len=1)
    (out / BACKGROUND).mkdir(parents=True)
    bg = {}
    for kind in bg_kinds:
        bg[kind] = quantize16(0.3 * make_noise(kind, int(p.float("background_seconds", lo=1.0) * sr), sr, rng)
                              .clip(-3.0, 3.0))
        write_wav(out / BACKGROUND / f"{kind}.wav", bg[kind], sr)

    speakers = make_speakers(rng, p.int("n_speakers", lo=3), timbre_db=p.float("timbre_db", lo=0.0),
                             accent=p.float("accent", lo=0.0, hi=0.5))
    order = rng.permutation(len(speakers))
    n_val = max(1, int(round(p.float("validation_fraction", lo=0.0, hi=0.5) * len(speakers))))
    n_test = max(1, int(round(p.float("testing_fraction", lo=0.0, hi=0.5) * len(speakers))))
    split_of = {int(s): "validation" for s in order[:n_val]}
    split_of.update({int(s): "testing" for s in order[n_val:n_val + n_test]})
    hashes = [f"{int(h):08x}" for h in rng.integers(0, 2**32, len(speakers))]

    jobs = [(w, p.int("clips_per_command", lo=1)) for w in commands] + [(w, p.int("clips_per_unknown", lo=1))
                                                                      for w in unknown]
    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    clips, labels, splits = [], [], []
    bg_names = list(bg)
    for word, count in tqdm(jobs, desc="speech_commands", leave=False):
        (out / word).mkdir()
        seen: dict[int, int] = {}
        for _ in range(count):
            sid = int(rng.integers(len(speakers)))
            y = synthesize(["_"] + phones(word) + ["_"], speakers[sid], rng, sr,
                           rate=float(rng.uniform(*rate)), f0_scale=float(rng.uniform(*pitch)))
            if tilt > 0:  # the recording's microphone and room, per clip
                y = channel_tilt(y, float(channel_rng.uniform(-tilt, tilt)), sr=sr)
            y = y[:n]
            clip = np.zeros(n, np.float32)
            start = int(rng.integers(0, n - len(y) + 1))
            clip[start:start + len(y)] = y
            noise_src = bg[bg_names[int(rng.integers(len(bg_names)))]]
            off = int(rng.integers(0, max(1, len(noise_src) - n)))
            noise = fit_length(noise_src[off:off + n], n, rng)
            _, _, x = mix(clip, noise, float(rng.uniform(*snr)))  # SNR over the whole 1-s clip
            k = seen.get(sid, 0)
            seen[sid] = k + 1
            rel = f"{word}/{hashes[sid]}_nohash_{k}.wav"
            write_wav(out / rel, x, sr, atomic=False)
            split = split_of.get(sid, "train")
            if split in lists:
                lists[split].append(rel)
            clips.append(x)
            labels.append(word if word in COMMANDS else "unknown")
            splits.append(split)
    for split, name in SC_LISTS.items():
        (out / name).write_text("".join(f"{r}\n" for r in sorted(lists[split])))
    counts = {s: splits.count(s) for s in ("train", "validation", "testing")}
    return {"sr": sr, "clips": len(clips), "split_counts": counts, "words": commands + unknown,
            "background": bg_kinds,
            "calibration": calibration.keyword_logreg(np.stack(clips), labels, splits, sr, seed=seed,
                                                      n_mels=p.int("calibration_n_mels", lo=4))}


def install_speech_commands(files: dict[str, Path], out: Path, p: Params) -> dict:
    archive = files[SC_ARCHIVE]
    if archive.is_dir():  # the user placed the extracted folder (or a subset of it)
        return install_sc_folder(archive, out, p.int("sr", lo=8000))
    log.info("extracting %s", archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(out, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataFormatError(f"{archive}: cannot extract ({exc})") from None
    clips = [p_ for p_ in out.glob("*/*.wav") if p_.parent.name != BACKGROUND]
    return {"sr": p.int("sr", lo=8000), "clips": len(clips)}


register(DatasetSpec(
    name="speech_commands", generate=generate_speech_commands, install_real=install_speech_commands,
    downloads=[Download(
        SC_ARCHIVE,
        urls=("https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
              "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"),
        # SHA-256 as published by torchaudio (datasets/speechcommands.py, _CHECKSUMS) and TensorFlow
        # Datasets (speech_commands/checksums.tsv, which also gives the size). Older torchaudio releases
        # published the MD5 6b74f3901214cb2c2934e98196829835 (also the bucket's ETag); one hash suffices.
        sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        size=2428923189,
        placed=(SC_FOLDER,),
    )],
    licence="Speech Commands v0.02 (Warden 2018): CC BY 4.0",
    validate=validate_speech_commands, preview="speech_commands", audio=True,
))
