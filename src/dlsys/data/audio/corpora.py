"""Public audio corpora in their native layouts under data/external/, and speech-activity cutting.

* LibriSpeech: `librispeech/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`
  (any subset), or the OpenSLR tarball placed in `librispeech/` (verified against its published MD5,
  extracted once into data/cache/librispeech/).
* ESC-50: `esc50/audio/<fold>-<src>-<take>-<target>.wav` (44.1 kHz, resampled here), `esc50/meta/esc50.csv`.
* Speech Commands' `speech_commands/_background_noise_/*.wav`.

Segments are cut where there is speech (or sound): a frame is active when its energy is within
`range_db` of the recording's loudest frame, and a segment qualifies when at least `min_active` of its
frames are active, so a segment is never mostly silence.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.data.inputs import Need
from dlsys.data.registry import CACHE_ROOT, Download
from dlsys.data.wav import read_wav

log = logging.getLogger(__name__)

LIBRISPEECH = "librispeech"
ESC50 = "esc50"
SPEECH_COMMANDS = "speech_commands"
BACKGROUND = "_background_noise_"

LIBRISPEECH_LICENCE = ("LibriSpeech ASR corpus, V. Panayotov, G. Chen, D. Povey, S. Khudanpur (ICASSP 2015), "
                       "OpenSLR SLR12: CC BY 4.0")
ESC50_LICENCE = ("ESC-50, K. J. Piczak (ACM MM 2015): CC BY-NC 3.0, non-commercial (the ESC-10 clips: CC BY 3.0); "
                 "per-clip Freesound attributions in esc50/LICENSE")
SC_LICENCE = "Speech Commands v0.02, P. Warden (2018): CC BY 4.0"

# OpenSLR SLR12 archives with their published MD5s (openslr.org/12, md5sum.txt).
_SLR12 = "resources/12/"
_MIRRORS = ("https://www.openslr.org/", "https://us.openslr.org/", "https://openslr.elda.org/")
LIBRISPEECH_MD5 = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}


def librispeech_download(subset: str) -> Download:
    name = f"{subset}.tar.gz"
    return Download(name, tuple(m + _SLR12 + name for m in _MIRRORS), md5=LIBRISPEECH_MD5[subset])


# --------------------------------------------------------------------------- reading

def read_audio(path: Path, sr: int) -> np.ndarray:
    """Mono float32 at `sr` (as librosa.load returns it); other rates resampled polyphase, quietly."""
    return read_wav(path, sr, warn_resample=False)


def _regular_files(folder: Path, pattern: str) -> list[Path]:
    out = []
    for p in sorted(folder.glob(pattern)):
        if p.is_symlink() or not p.is_file():
            raise DataFormatError(f"{p}: not a regular file (links are refused)")
        out.append(p)
    return out


# --------------------------------------------------------------------------- LibriSpeech

def librispeech_need(external_root: Path, subset: str, key: str = "subset") -> list[Need]:
    """[] when the subset's folder or its verified-on-use tarball is there; else how to get it."""
    base = external_root / LIBRISPEECH
    if (base / "LibriSpeech" / subset).is_dir():
        return []
    if subset in LIBRISPEECH_MD5:
        dl = librispeech_download(subset)
        if (base / dl.filename).exists():
            return []
        route = (f"download {dl.urls[0]} (OpenSLR SLR12, MD5 {dl.md5}) into {base}/ (verified and extracted "
                 f"on use), or extract it there yourself; any LibriSpeech subset works "
                 f"(`{key}` in params.yaml)")
    else:
        route = f"place a LibriSpeech subset folder there (native layout); {subset!r} is not an OpenSLR subset name"
    return [Need(f"{LIBRISPEECH}/LibriSpeech/{subset}/", f"LibriSpeech {subset}: <speaker>/<chapter>/*.flac", route)]


def librispeech_dir(external_root: Path, subset: str) -> Path:
    """The subset's folder: placed, or extracted (once) from the placed tarball after its MD5 check."""
    from dlsys.data.download import extract_tar, verify

    placed = external_root / LIBRISPEECH / "LibriSpeech" / subset
    if placed.is_dir():
        return placed
    dl = librispeech_download(subset)
    archive = external_root / LIBRISPEECH / dl.filename
    if not archive.exists():
        raise MissingDataError(f"{placed}: not found ({librispeech_need(external_root, subset)[0].route})")
    cache = external_root.parent / CACHE_ROOT.name / LIBRISPEECH
    done = cache / f".extracted-{dl.md5}"
    if not done.exists():
        verify(archive, md5=dl.md5)
        log.info("extracting %s into %s", archive, cache)
        extract_tar(archive, cache)
        done.write_text(f"{archive.name}\n")
    return cache / "LibriSpeech" / subset


def librispeech_speakers(subset_dir: Path) -> dict[str, list[Path]]:
    """{speaker id: its utterance files, sorted}; speakers sorted numerically."""
    speakers: dict[str, list[Path]] = {}
    for spk in sorted((p for p in subset_dir.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name)):
        files = _regular_files(spk, "*/*.flac")
        if files:
            speakers[spk.name] = files
    if not speakers:
        raise DataFormatError(f"{subset_dir}: no <speaker>/<chapter>/*.flac files")
    return speakers


def librispeech_sexes(subset_dir: Path) -> dict[str, str]:
    """{speaker id: 'F' | 'M'} from LibriSpeech/SPEAKERS.TXT when it is there."""
    path = subset_dir.parent / "SPEAKERS.TXT"
    if not path.is_file():
        return {}
    sexes = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(";"):
            continue
        parts = [q.strip() for q in line.split("|")]
        if len(parts) >= 2 and parts[0].isdigit() and parts[1] in ("F", "M"):
            sexes[parts[0]] = parts[1]
    return sexes


# --------------------------------------------------------------------------- noise corpora

@dataclass(frozen=True)
class NoiseClip:
    path: Path
    group: str       # clips of one source recording share a group: a group never spans two splits
    label: str       # ESC-50 category or background file name
    corpus: str


def noise_need(external_root: Path, corpora: list[str]) -> list[Need]:
    needs = []
    for c in corpora:
        if c == ESC50 and not list((external_root / ESC50 / "audio").glob("*.wav")):
            needs.append(Need(f"{ESC50}/audio/", "ESC-50 clips <fold>-<src>-<take>-<target>.wav (native layout, with meta/)",
                              "download the ESC-50 repository (github.com/karolpiczak/ESC-50, archive of master) "
                              f"and place its audio/ and meta/ folders in {external_root / ESC50}/"))
        if c == SPEECH_COMMANDS and not list((external_root / SPEECH_COMMANDS / BACKGROUND).glob("*.wav")):
            needs.append(Need(f"{SPEECH_COMMANDS}/{BACKGROUND}/", "Speech Commands background-noise wavs",
                              "extract speech_commands_v0.02.tar.gz (download.tensorflow.org/data/) into "
                              f"{external_root / SPEECH_COMMANDS}/ (or place its _background_noise_/ folder)"))
    return needs


def noise_clips(external_root: Path, corpora: list[str]) -> list[NoiseClip]:
    clips = []
    for c in corpora:
        if c == ESC50:
            folder = external_root / ESC50
            categories = {}
            meta = folder / "meta" / "esc50.csv"
            if meta.is_file():
                with open(meta, newline="") as f:
                    categories = {row["filename"]: row["category"] for row in csv.DictReader(f)}
            for p in _regular_files(folder / "audio", "*.wav"):
                parts = p.stem.split("-")
                if len(parts) != 4:
                    raise DataFormatError(f"{p}: not an ESC-50 name <fold>-<src>-<take>-<target>.wav")
                # takes of one Freesound recording share `src`: keep them in one split
                clips.append(NoiseClip(p, f"esc50:{parts[1]}", categories.get(p.name, f"target{parts[3]}"), ESC50))
        elif c == SPEECH_COMMANDS:
            for p in _regular_files(external_root / SPEECH_COMMANDS / BACKGROUND, "*.wav"):
                clips.append(NoiseClip(p, f"sc:{p.stem}", p.stem, SPEECH_COMMANDS))
        else:
            raise DataFormatError(f"unknown noise corpus {c!r}; known: {ESC50}, {SPEECH_COMMANDS}")
    return clips


# --------------------------------------------------------------------------- activity

@dataclass(frozen=True)
class Vad:
    frame: int        # samples
    hop: int
    range_db: float   # active: within this many dB of the loudest frame
    min_active: float  # share of active frames a segment needs

    @classmethod
    def from_params(cls, p, sr: int) -> "Vad":
        return cls(frame=int(round(p.float("frame_ms", lo=1) * sr / 1000)),
                   hop=int(round(p.float("hop_ms", lo=1) * sr / 1000)),
                   range_db=p.float("range_db", lo=1), min_active=p.float("min_active", lo=0.0, hi=1.0))

    def active(self, x: np.ndarray) -> np.ndarray:
        """Per hop: is the frame starting there active (bool, one per hop position)."""
        n = 1 + (len(x) - self.frame) // self.hop if len(x) >= self.frame else 0
        if n <= 0:
            return np.zeros(0, bool)
        x64 = np.asarray(x, np.float64)
        c = np.concatenate([[0.0], np.cumsum(x64 * x64)])
        starts = np.arange(n) * self.hop
        energy = (c[starts + self.frame] - c[starts]) / self.frame
        db = 10 * np.log10(energy + 1e-20)
        return db > db.max() - self.range_db

    def window_ok(self, mask: np.ndarray, length: int) -> np.ndarray:
        """For each hop position, whether a segment of `length` samples starting there qualifies."""
        w = max(1, (length - self.frame) // self.hop + 1)
        if len(mask) < w:
            return np.zeros(0, bool)
        c = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
        return (c[w:] - c[:-w]) >= self.min_active * w

    def pack(self, x: np.ndarray, length: int) -> list[int]:
        """Start samples of as many non-overlapping qualifying segments as fit, left to right."""
        ok = self.window_ok(self.active(x), length)
        starts, i = [], 0
        step = -(-length // self.hop)  # hops a segment covers: the next one starts after it
        while i < len(ok):
            if ok[i] and i * self.hop + length <= len(x):
                starts.append(i * self.hop)
                i += step
            else:
                i += 1
        return starts

    def active_fraction(self, segments: np.ndarray) -> float:
        """Mean share of active frames in `segments` (rows), each judged against its own loudest frame."""
        return float(np.mean([self.active(s).mean() for s in segments])) if len(segments) else 0.0
