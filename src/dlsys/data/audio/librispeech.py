"""`data.speakers.source: librispeech`: the course's trs.pkl / tes.pkl built from LibriSpeech.

trs.pkl holds `n_train_speakers` × `utterances_per_speaker` rows of `train_samples` samples, tes.pkl
`n_test_speakers` other speakers × the same number of rows of `test_samples`: float32 as `librosa.load`
returns it (16 kHz, unnormalised), rows ordered by speaker (a block of rows per speaker, speakers in
numeric id order). Each row is a speech-active segment (see corpora.Vad) of one utterance. Segments
of a speaker come from different utterances while there are enough; otherwise several non-overlapping
segments are cut from one utterance, and dataset.json says so. Which speakers go where is drawn from
`seed`: test speakers first (they need the longer rows), then training speakers from the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError
from dlsys.core.params import Params
from dlsys.data.audio import calibration
from dlsys.data.audio.corpora import (LIBRISPEECH, LIBRISPEECH_LICENCE, Vad, librispeech_dir, librispeech_need,
                                      librispeech_sexes, librispeech_speakers, read_audio)
from dlsys.data.audio.sets import SPEAKER_FILES, rng_for
from dlsys.data.inputs import Builder
from dlsys.data.registry import get_spec
from dlsys.data.safe_pickle import dump_pickle

log = logging.getLogger(__name__)


def _segments_of(files: list[Path], need: int, length: int, vad: Vad, sr: int,
                 rng: np.random.Generator) -> tuple[list[np.ndarray], list[tuple[str, int]], list[float]] | None:
    """`need` non-overlapping speech segments of `length` samples, spread over as many utterances as possible.

    Utterances are visited in a seeded order and read until they hold enough segments; the segments are
    then taken round-robin (one per utterance per round). None when the speaker has too little speech.
    """
    order = rng.permutation(len(files))
    slots: list[tuple[Path, np.ndarray, np.ndarray, list[int]]] = []
    capacity = 0
    for k in order:
        x = read_audio(files[k], sr)
        mask = vad.active(x)
        starts = vad.pack(x, length)
        if starts:
            slots.append((files[k], x, mask, starts))
            capacity += len(starts)
        if capacity >= need and len(slots) >= min(need, len(files)):
            break
    if capacity < need:
        return None
    take = [0] * len(slots)
    left = need
    while left:
        for i, (_, _, _, starts) in enumerate(slots):
            if left and take[i] < len(starts):
                take[i] += 1
                left -= 1
    rows, where, shares = [], [], []
    w = max(1, (length - vad.frame) // vad.hop + 1)
    for (path, x, mask, starts), m in zip(slots, take):
        if not m:
            continue
        chosen = sorted(rng.choice(len(starts), size=m, replace=False))
        for c in chosen:
            s = starts[c]
            rows.append(x[s:s + length])
            where.append((path.name, s))
            shares.append(float(mask[s // vad.hop: s // vad.hop + w].mean()))
    return rows, where, shares


def needs(external_root: Path, p: Params) -> list:
    q = p.sub("librispeech")
    return librispeech_need(external_root, q.str("subset"), q._key("subset"))


def build(external_root: Path, out: Path, p: Params, seed: int) -> dict:
    q = p.sub("librispeech")
    subset = q.str("subset")
    sr = p.int("sr", lo=8000)
    utts = p.int("utterances_per_speaker", lo=2)
    counts = {"test": p.int("n_test_speakers", lo=2), "train": p.int("n_train_speakers", lo=2)}
    lengths = {"train": p.int("train_samples", lo=1000), "test": p.int("test_samples", lo=1000)}
    vad = Vad.from_params(q.sub("vad"), sr)
    folder = librispeech_dir(external_root, subset)
    speakers = librispeech_speakers(folder)
    sexes = librispeech_sexes(folder)
    rng = rng_for(seed, "speakers", "librispeech")
    chosen: dict[str, dict[str, tuple]] = {"train": {}, "test": {}}
    skipped = 0
    for spk in (list(speakers)[i] for i in rng.permutation(len(speakers))):
        split = next((s for s in ("test", "train") if len(chosen[s]) < counts[s]), None)
        if split is None:
            break
        got = _segments_of(speakers[spk], utts, lengths[split], vad, sr, rng_for(seed, "speakers", f"spk{spk}{split}"))
        if got is None and split == "test" and len(chosen["train"]) < counts["train"]:
            split = "train"  # too little speech for the longer test rows: maybe enough for training rows
            got = _segments_of(speakers[spk], utts, lengths[split], vad, sr, rng_for(seed, "speakers", f"spk{spk}{split}"))
        if got is None:
            skipped += 1
            continue
        chosen[split][spk] = got
    short = {s: counts[s] - len(chosen[s]) for s in counts if len(chosen[s]) < counts[s]}
    if short:
        raise DataFormatError(
            f"{folder}: too little speech for the course format: {len(speakers)} speakers, "
            + ", ".join(f"{len(chosen[s])} of {counts[s]} {s} speakers with {utts} non-overlapping speech segments "
                        f"of {lengths[s]} samples" for s in short)
            + "; place more LibriSpeech utterances (another subset or more speakers) or lower the counts in params.yaml")

    summary: dict = {"builder": "librispeech", "corpus": f"LibriSpeech {subset} (OpenSLR SLR12)",
                     "licence": LIBRISPEECH_LICENCE, "sr": sr, "utterances_per_speaker": utts}
    files: dict[str, list[int]] = {}
    per_utt, shares = [], []
    arrays = {}
    for split in ("train", "test"):
        ids = sorted(chosen[split], key=lambda s: (len(s), s))  # rows ordered by speaker
        rows = []
        for spk in ids:
            segs, where, share = chosen[split][spk]
            rows += segs
            shares += share
            names = [w[0] for w in where]
            per_utt.append(max(names.count(n) for n in set(names)))
            for n, s in where:
                files.setdefault(f"{spk}/{n.split('-')[1]}/{n}", []).append(int(s))
        arrays[split] = np.stack(rows).astype(np.float32)
        summary[f"{split}_shape"] = list(arrays[split].shape)
        summary[f"{split}_speakers"] = ids
        if sexes:
            summary[f"{split}_sexes"] = {x: sum(sexes.get(s) == x for s in ids) for x in ("F", "M")}
        dump_pickle(arrays[split], out / SPEAKER_FILES[split])
    # <speaker>/<chapter>/<utterance file> -> the first sample of each row cut from it
    summary["files"] = {k: sorted(v) for k, v in sorted(files.items())}
    summary["segments_per_utterance_max"] = max(per_utt)
    if max(per_utt) > 1:
        summary["note"] = (f"the corpus has fewer utterances per speaker than rows needed for some speakers: up to "
                           f"{max(per_utt)} non-overlapping segments were cut from one utterance")
    summary["speech_active_share_mean"] = round(float(np.mean(shares)), 4)
    summary["vad"] = {"frame": vad.frame, "hop": vad.hop, "range_db": vad.range_db, "min_active": vad.min_active}
    summary["speakers_skipped_too_little_speech"] = skipped
    summary["calibration"] = calibration.speaker_baseline(arrays["train"], arrays["test"], utts, seed=seed,
                                                          n_fft=p.int("calibration_n_fft", lo=16))
    return summary


BUILDER = Builder(corpus="LibriSpeech", licence=LIBRISPEECH_LICENCE, needs=needs, build=build)
get_spec("speakers").builders[LIBRISPEECH] = BUILDER
