"""`data.timit_denoise.source: public`: the course's timit-homework/{tr,v,te} from public corpora.

Speech: LibriSpeech sentences (speech-active segments of `sentence_seconds`, see corpora.Vad); noise:
ESC-50 clips (44.1 kHz, resampled) and/or Speech Commands' background-noise files. Names and layout
are the course's (`tr/trx0000.wav` with `trs`/`trn`, `v/vx…` with `vs`/`vn`, `te/tex…` alone); each
sentence is mixed with `public.noises_per_sentence` different noise clips at a mixture SNR drawn from
`snr_db`, on the 16-bit grid so that trx = trs + trn sample for sample.

Leakage is excluded by construction: speakers are split between tr/v/te, and so are noise recordings
(ESC-50 takes of one source recording stay together; a background file is one recording). Everything
is drawn from `seed`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError
from dlsys.core.params import Params
from dlsys.data.audio import calibration
from dlsys.data.audio.corpora import (ESC50, ESC50_LICENCE, LIBRISPEECH, LIBRISPEECH_LICENCE, SC_LICENCE,
                                      SPEECH_COMMANDS, NoiseClip, Vad, librispeech_dir, librispeech_need,
                                      librispeech_speakers, noise_clips, noise_need, read_audio)
from dlsys.data.audio.sets import TIMIT_DIR, TIMIT_SPLITS, _range, mix, rng_for
from dlsys.data.inputs import Builder
from dlsys.data.registry import get_spec
from dlsys.data.wav import write_wav

log = logging.getLogger(__name__)

SPLITS = ("tr", "v", "te")
NOISE_CORPORA = (ESC50, SPEECH_COMMANDS)


def _corpora(q: Params) -> list[str]:
    from dlsys.core.errors import UserError

    names = q.list("noise_corpora", item_type=str, min_len=1)
    for n in names:
        if n not in NOISE_CORPORA:
            raise UserError(f"params.yaml: '{q._key('noise_corpora')}': unknown corpus {n!r}; known: "
                            f"{', '.join(NOISE_CORPORA)}")
    return names


def needs(external_root: Path, p: Params) -> list:
    q = p.sub("public")
    return librispeech_need(external_root, q.str("subset"), q._key("subset")) + noise_need(external_root, _corpora(q))


def _shares(total: int, weights: dict[str, int], floor: int = 1) -> dict[str, int]:
    """Split `total` items in proportion to `weights`, at least `floor` each (largest remainder)."""
    if total < floor * len(weights):
        raise DataFormatError(f"need at least {floor * len(weights)} items to split over {', '.join(weights)}, "
                              f"have {total}")
    w = np.array(list(weights.values()), float)
    raw = floor + (total - floor * len(w)) * w / w.sum()
    n = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - n))[: total - n.sum()]:
        n[i] += 1
    return dict(zip(weights, map(int, n)))


def _split_noise(clips: list[NoiseClip], weights: dict[str, int], floor: int,
                 rng: np.random.Generator) -> dict[str, list[NoiseClip]]:
    """Noise recordings (groups) to splits: v and te get at least `floor` clips where possible, tr the rest."""
    groups: dict[str, list[NoiseClip]] = {}
    for c in clips:
        groups.setdefault(c.group, []).append(c)
    keys = [sorted(groups)[i] for i in rng.permutation(len(groups))]
    if len(keys) < len(weights):
        raise DataFormatError(f"{len(keys)} noise recording(s): need at least one per split ({', '.join(weights)})")
    total = len(clips)
    out: dict[str, list[NoiseClip]] = {s: [] for s in weights}
    for split, keep in (("te", 2), ("v", 1)):  # keep: recordings left for the splits still to fill
        want = max(floor, int(round(total * weights[split] / sum(weights.values()))))
        while len(keys) > keep and len(out[split]) < want:
            out[split] += groups[keys.pop()]
    for k in keys:
        out["tr"] += groups[k]
    for s in out:
        if not out[s]:
            raise DataFormatError(f"not enough noise recordings for split {s}")
    return out


class _Sentences:
    """A speaker's stream of speech segments: utterances in a seeded order, cut left to right."""

    def __init__(self, files: list[Path], sr: int, vad: Vad, seconds: tuple[float, float], rng: np.random.Generator):
        self.files = [files[i] for i in rng.permutation(len(files))]
        self.sr, self.vad, self.seconds, self.rng = sr, vad, seconds, rng
        self.x = self.ok_len = None
        self.pos = 0

    def next(self) -> tuple[np.ndarray, str] | None:
        n = int(round(self.rng.uniform(*self.seconds) * self.sr))
        while True:
            if self.x is None:
                if not self.files:
                    return None
                self.path = self.files.pop(0)
                self.x, self.pos = read_audio(self.path, self.sr), 0
                self.mask = self.vad.active(self.x)
            ok = self.vad.window_ok(self.mask, n)
            first = self.pos // self.vad.hop + (self.pos % self.vad.hop > 0)
            cand = np.flatnonzero(ok[first:]) + first if first < len(ok) else np.array([], int)
            cand = cand[cand * self.vad.hop + n <= len(self.x)]
            if len(cand):
                s = int(cand[0]) * self.vad.hop
                self.pos = s + n
                return self.x[s:s + n], f"{self.path.name}@{s}"
            self.x = None


def _noise_segment(clip: np.ndarray, mask_ok, n: int, vad: Vad, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of a noise recording where it is sounding; a recording shorter than `n` is tiled."""
    if len(clip) < n:
        clip = np.tile(clip, -(-n // len(clip)))
        ok = vad.window_ok(vad.active(clip), n)
    else:
        ok = mask_ok(n)
    cand = np.flatnonzero(ok)
    cand = cand[cand * vad.hop + n <= len(clip)]
    s = int(cand[rng.integers(len(cand))]) * vad.hop if len(cand) else int(rng.integers(0, len(clip) - n + 1))
    return clip[s:s + n]


def build(external_root: Path, out: Path, p: Params, seed: int) -> dict:
    q = p.sub("public")
    sr = p.int("sr", lo=8000)
    subset = q.str("subset")
    per_sentence = q.int("noises_per_sentence", lo=1)
    vad = Vad.from_params(q.sub("vad"), sr)
    seconds, snr = _range(p, "sentence_seconds", lo=0.5), _range(p, "snr_db")
    counts = {"tr": p.int("n_train_sentences", lo=1), "v": p.int("n_val_sentences", lo=1),
              "te": p.int("n_test_sentences", lo=1)}
    corpora = _corpora(q)

    folder = librispeech_dir(external_root, subset)
    speakers = librispeech_speakers(folder)
    rng = rng_for(seed, "timit_denoise", "public")
    order = [list(speakers)[i] for i in rng.permutation(len(speakers))]
    n_spk = _shares(len(order), counts)
    spk_of = {}
    start = 0
    for split in SPLITS:
        spk_of[split] = sorted(order[start:start + n_spk[split]], key=lambda s: (len(s), s))
        start += n_spk[split]
    noise = _split_noise(noise_clips(external_root, corpora), counts, per_sentence, rng)
    audio_cache: dict[Path, tuple[np.ndarray, dict]] = {}

    def noise_audio(c: NoiseClip):
        if c.path not in audio_cache:
            x = read_audio(c.path, sr)
            mask = vad.active(x)
            memo: dict[int, np.ndarray] = {}
            audio_cache[c.path] = (x, lambda n, m=mask, memo=memo: memo.setdefault(n, vad.window_ok(m, n)))
        return audio_cache[c.path]

    noise_names = {ESC50: "ESC-50", SPEECH_COMMANDS: "Speech Commands v0.02 _background_noise_"}
    summary: dict = {
        "builder": "public", "sr": sr,
        "corpus": " + ".join([f"LibriSpeech {subset} (OpenSLR SLR12)"] + [noise_names[c] for c in corpora]),
        "corpora": {"speech": f"LibriSpeech {subset}", "noise": [noise_names[c] for c in corpora]},
        "licence": "; ".join([LIBRISPEECH_LICENCE] + [{ESC50: ESC50_LICENCE, SPEECH_COMMANDS: SC_LICENCE}[c]
                                                      for c in corpora]),
        "snr_db": list(snr), "sentence_seconds": list(seconds), "noises_per_sentence": per_sentence,
        "mixtures": {}, "speakers": {}, "files": {}, "calibration": {}}
    for split in SPLITS:
        srng = rng_for(seed, "timit_denoise", f"public-{split}")
        xp, sp, np_ = TIMIT_SPLITS[split]
        folder_out = out / TIMIT_DIR / split
        folder_out.mkdir(parents=True)
        streams = [(s, _Sentences(speakers[s], sr, vad, seconds, rng_for(seed, "timit_denoise", f"spk{s}")))
                   for s in spk_of[split]]
        used_spk = set()
        pool = [noise[split][i] for i in srng.permutation(len(noise[split]))]
        cursor = 0
        used_speech, sources, noises = [], [], []
        k = 0
        for i in range(counts[split]):
            got = None
            while streams and got is None:
                spk, stream = streams[k % len(streams)]
                got = stream.next()
                if got is None:
                    streams.remove((spk, stream))
                else:
                    used_spk.add(spk)
                    k += 1
            if got is None:
                raise DataFormatError(
                    f"{folder}: the {len(spk_of[split])} {split} speakers hold only {i} speech segments of "
                    f"{seconds[0]}-{seconds[1]} s, {counts[split]} needed; place more LibriSpeech utterances "
                    f"or lower data.timit_denoise.n_*_sentences")
            clean, where = got
            used_speech.append(where)
            for j in range(per_sentence):
                clip = pool[cursor % len(pool)]
                cursor += 1
                x_noise, ok = noise_audio(clip)
                s, n, x = mix(clean, _noise_segment(x_noise, ok, len(clean), vad, srng), float(srng.uniform(*snr)))
                ident = f"{i * per_sentence + j:04d}"
                write_wav(folder_out / f"{xp}{ident}.wav", x, sr, atomic=False)  # out is a temporary dir
                if sp is not None:
                    write_wav(folder_out / f"{sp}{ident}.wav", s, sr, atomic=False)
                    write_wav(folder_out / f"{np_}{ident}.wav", n, sr, atomic=False)
                sources.append(s)
                noises.append(n)
        summary["mixtures"][split] = counts[split] * per_sentence
        summary["speakers"][split] = [s for s in spk_of[split] if s in used_spk]  # those actually heard
        summary["files"][split] = {
            "speech": used_speech,
            "noise": sorted(str(c.path.relative_to(external_root)) for c in noise[split])}
        if split != "te":
            summary["calibration"][split] = calibration.ibm_check(
                sources, noises, n_fft=p.int("calibration_n_fft", lo=16), hop=p.int("calibration_hop", lo=1))
    if ESC50 in corpora:
        summary["note"] = "ESC-50 is licensed for non-commercial use only (CC BY-NC 3.0)"
    return summary


BUILDER = Builder(corpus="LibriSpeech + ESC-50 / Speech Commands noise", licence=LIBRISPEECH_LICENCE,
                  needs=needs, build=build)
get_spec("timit_denoise").builders["public"] = BUILDER
