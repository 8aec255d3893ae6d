"""Speech Commands from an extracted v0.02 folder (the whole set or a subset), instead of the tarball.

The folder is what the tarball unpacks to: one folder per word holding `<speaker>_nohash_<n>.wav`,
`_background_noise_/`, `validation_list.txt`, `testing_list.txt`. Only regular files are copied (a
link is refused); every clip's header is checked (readable audio, mono, the expected rate, not
empty) and every background file read in full. A subset is fine: list entries whose clip is absent
are counted and dropped from the copied lists. dataset.json records the word, clip and speaker counts per split, and
whether the lists keep speakers apart (the official lists do).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from dlsys.core.errors import DataFormatError
from dlsys.data.inputs import Placed, copy_regular_tree
from dlsys.data.wav import read_wav

log = logging.getLogger(__name__)

BACKGROUND = "_background_noise_"
LISTS = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
FOLDER = Placed("", "extracted Speech Commands v0.02 folder (word folders, _background_noise_/, "
                    "validation_list.txt, testing_list.txt)", folder=True,
                members=(BACKGROUND, *LISTS.values()))
V002_WORDS = 35
V002_CLIPS = 105829


def speaker_of(rel: str) -> str:
    return Path(rel).name.split("_nohash_")[0]


def install_folder(src: Path, out: Path, sr: int) -> dict:
    """Copy the regular files of an extracted Speech Commands folder into `out` and check them."""
    skip = {Path(src) / "speech_commands_v0.02.tar.gz"}  # a tarball placed beside the folder is not data
    copy_regular_tree(Path(src), out, skip=lambda p: p in skip or p.name.startswith("."))
    clips = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.wav") if p.parent.name != BACKGROUND)
    if not clips:
        raise DataFormatError(f"{src}: no word folders with .wav clips")
    for rel in clips:
        try:
            info = sf.info(out / rel)
        except (RuntimeError, sf.LibsndfileError, ValueError) as exc:
            raise DataFormatError(f"{src / rel}: not a readable audio file ({exc})") from None
        if info.frames == 0 or info.channels != 1 or info.samplerate != sr:
            raise DataFormatError(f"{src / rel}: expected non-empty mono audio at {sr} Hz, got {info.frames} "
                                  f"frames, {info.channels} channel(s) at {info.samplerate} Hz")
    background = sorted((out / BACKGROUND).glob("*.wav"))
    if not background:
        raise DataFormatError(f"{src / BACKGROUND}: no background-noise .wav files")
    for b in background:
        read_wav(b, sr)
    present = set(clips)
    split_of, absent = {}, {}
    for split, name in LISTS.items():
        entries = [line.strip() for line in (out / name).read_text().splitlines() if line.strip()]
        absent[split] = sum(e not in present for e in entries)
        kept = [e for e in entries if e in present]
        split_of.update({e: split for e in kept})
        if absent[split]:  # the copy lists only clips it holds (the reader refuses dangling entries)
            (out / name).write_text("".join(f"{e}\n" for e in kept))
    splits = {c: split_of.get(c, "train") for c in clips}
    speakers = {s: {speaker_of(c) for c, t in splits.items() if t == s} for s in ("train", "validation", "testing")}
    overlap = (speakers["train"] & (speakers["validation"] | speakers["testing"])) | \
              (speakers["validation"] & speakers["testing"])
    words = sorted({c.split("/")[0] for c in clips})
    summary = {"sr": sr, "form": "extracted folder", "clips": len(clips), "words": words,
               "background": [b.name for b in background],
               "split_counts": {s: sum(t == s for t in splits.values()) for s in speakers},
               "split_speakers": {s: len(v) for s, v in speakers.items()},
               "speaker_disjoint_splits": not overlap}
    notes = []
    if len(clips) < V002_CLIPS or len(words) < V002_WORDS:
        notes.append(f"a subset: {len(clips)} clips of {len(words)} words (v0.02: {V002_CLIPS} clips of {V002_WORDS})")
    if any(absent.values()):
        notes.append("list entries without their clip dropped from the copied lists: "
                     + ", ".join(f"{s} {n}" for s, n in absent.items() if n))
    if overlap:
        notes.append(f"{len(overlap)} speaker(s) appear in more than one split")
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def lecture_selection(words: list[str], splits: list[str], commands: list[str], unknown_share: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Which clips the lecture's 12-class task keeps: every command clip, and per split a random
    `unknown_share` × (that split's command clips) of the other words' clips as class "unknown".

    The full v0.02 holds about 1.5 times as many clips of the 25 auxiliary words as of the ten commands;
    kept whole, "unknown" would be most of every split (TensorFlow's recipe keeps 10 %, as silence).
    Returns a boolean mask over the clips, in their order.
    """
    words, splits = np.asarray(words), np.asarray(splits)
    is_command = np.isin(words, commands)
    keep = is_command.copy()
    for split in sorted(set(splits.tolist())):
        pool = np.flatnonzero((splits == split) & ~is_command)
        n = min(len(pool), int(np.ceil(unknown_share * np.sum(is_command & (splits == split)))))
        keep[rng.choice(pool, size=n, replace=False)] = True
    return keep
