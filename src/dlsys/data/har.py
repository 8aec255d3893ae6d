"""WISDM v1.1 activity recognition: the raw-file reader, windowing, and a synthetic generator.

The raw file (`WISDM_ar_v1.1_raw.txt`) holds records `user,activity,timestamp,x,y,z;` — 3-axis
accelerometer at 20 Hz from a phone in the front trouser pocket, 36 users, 6 activities. The real file
has a few malformed records (missing fields, several records on one line); the reader keeps the
well-formed ones and reports how many it skipped.

Synthetic mode writes the same raw format: each subject has their own device orientation, gait
cadence, amplitude and harmonic profile; walking/upstairs/downstairs/jogging are periodic patterns
with varying cadence, sitting/standing are a gravity direction plus noise. Activities overlap (subjects'
cadences and orientations vary), so the task is learnable but not trivial.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.core.params import Params
from dlsys.data.registry import DatasetSpec, Download, register

log = logging.getLogger(__name__)

ACTIVITIES = ("Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing")
RAW_FILE = "WISDM_ar_v1.1_raw.txt"
ARCHIVE = "WISDM_ar_latest.tar.gz"
GRAVITY = 9.81
# Share of the real file's samples per activity (WISDM v1.1 readme); the synthetic set follows it.
REAL_SHARE = {"Walking": 0.386, "Jogging": 0.312, "Upstairs": 0.112, "Downstairs": 0.091,
              "Sitting": 0.055, "Standing": 0.044}

_MAX_FLOAT32 = float(np.finfo(np.float32).max)
_RECORD = re.compile(r"\s*(\d+)\s*,\s*([A-Za-z]+)\s*,\s*(\d+)\s*,\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*,"
                     r"\s*([-+0-9.eE]+)\s*$")


@dataclass
class HarRecords:
    """The raw file as arrays, in file order."""

    user: np.ndarray        # int64 (N,)
    activity: np.ndarray    # int64 (N,) index into ACTIVITIES
    timestamp: np.ndarray   # int64 (N,)
    xyz: np.ndarray         # float32 (N, 3)
    skipped: int = 0
    activities: tuple[str, ...] = ACTIVITIES

    def windows(self, length: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return window(self, length, step)


def read_raw(path: str | Path) -> HarRecords:
    """Parse a WISDM v1.1 raw file; malformed records are skipped and counted."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: WISDM raw file not found; run `dvc repro acquire_har`")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file (expected the WISDM raw text file)")
    text = path.read_text(errors="replace")
    users, acts, times, vals = [], [], [], []
    skipped = 0
    index = {a.lower(): i for i, a in enumerate(ACTIVITIES)}
    for rec in text.replace("\n", ";").split(";"):
        if not rec.strip():
            continue
        m = _RECORD.match(rec)
        act = index.get(m.group(2).lower()) if m else None
        if m is None or act is None:
            skipped += 1
            continue
        try:
            xyz = (float(m.group(4)), float(m.group(5)), float(m.group(6)))
        except ValueError:
            skipped += 1
            continue
        if not all(math.isfinite(v) and abs(v) <= _MAX_FLOAT32 for v in xyz):
            # 1e999 parses as inf: a sensor never reads that; a silent inf would poison every window it is in
            raise DataFormatError(f"{path}: record {len(users) + skipped + 1} has a non-finite or out-of-range "
                                  f"value: {rec.strip()[:60]!r}")
        users.append(int(m.group(1)))
        acts.append(act)
        times.append(int(m.group(3)))
        vals.append(xyz)
    if not users:
        raise DataFormatError(f"{path}: no well-formed 'user,activity,timestamp,x,y,z;' records")
    if skipped:
        log.info("%s: skipped %d malformed record(s) of %d", path, skipped, skipped + len(users))
    return HarRecords(np.asarray(users, np.int64), np.asarray(acts, np.int64), np.asarray(times, np.int64),
                      np.asarray(vals, np.float32), skipped)


def window(records: HarRecords, length: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of `length` samples every `step` samples inside each contiguous (user, activity) run.

    Returns (X float32 (W, length, 3), y int64 (W,), subject int64 (W,)). A window never crosses a
    change of user or activity, so every label is exact.
    """
    if length < 1 or step < 1:
        raise ValueError("window length and step must be >= 1")
    key = records.user * len(ACTIVITIES) + records.activity
    bounds = np.flatnonzero(np.diff(key) != 0) + 1
    starts_run = np.concatenate([[0], bounds])
    ends_run = np.concatenate([bounds, [len(key)]])
    starts = [np.arange(s, e - length + 1, step) for s, e in zip(starts_run, ends_run) if e - s >= length]
    if not starts:
        return (np.zeros((0, length, 3), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    first = np.concatenate(starts)
    idx = first[:, None] + np.arange(length)[None, :]
    return records.xyz[idx], records.activity[first], records.user[first]


def subject_split(subjects: np.ndarray, first_test_subject: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test): subjects with id >= first_test_subject are held out."""
    test = subjects >= first_test_subject
    return ~test, test


# ---- synthetic generator -------------------------------------------------------------------------

def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    a, b, c = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


# Per activity: mean cadence (steps/s), vertical amplitude (m/s²), forward amplitude, harmonic weights.
_GAIT = {
    "Walking": (1.9, 4.0, 2.0, (1.0, 0.45, 0.2)),
    "Jogging": (2.7, 9.0, 4.0, (1.0, 0.3, 0.15)),
    "Upstairs": (1.6, 3.6, 2.6, (1.0, 0.6, 0.35)),
    "Downstairs": (1.8, 5.0, 1.8, (1.0, 0.7, 0.4)),
}


def _activity_signal(act: str, n: int, fs: float, subj: dict, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) accelerometer samples in the body frame (x: forward, y: vertical, z: lateral), m/s²."""
    t = np.arange(n) / fs
    out = np.zeros((n, 3))
    if act in _GAIT:
        cad, vert, fwd, harm = _GAIT[act]
        cadence = cad * subj["cadence"] * rng.uniform(0.9, 1.1)
        # Slowly varying cadence: integrate the instantaneous frequency.
        drift = 1 + 0.06 * np.sin(2 * np.pi * t / rng.uniform(8, 20) + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(cadence * drift) / fs
        amp = subj["amplitude"] * rng.uniform(0.85, 1.15)
        for k, w in enumerate(harm, start=1):
            ph = subj["phases"][k - 1]
            out[:, 1] += amp * vert * w * np.sin(k * phase + ph)
            out[:, 0] += amp * fwd * w * np.sin(k * phase + ph + np.pi / 2)
            out[:, 2] += amp * 0.4 * fwd * w * np.sin(0.5 * k * phase + ph)
        out[:, 1] += GRAVITY
        if act == "Upstairs":
            out[:, 0] += 1.0   # leaning forward
        elif act == "Downstairs":
            out[:, 0] -= 0.8
        noise = subj["noise"] * 1.5
    else:
        # Static postures: the phone's pocket tilts the gravity vector; sitting puts the thigh horizontal.
        tilt = np.deg2rad(subj["sit_tilt"] if act == "Sitting" else subj["stand_tilt"])
        tilt += np.deg2rad(rng.normal(0, 8))
        out[:, 0] = GRAVITY * np.sin(tilt)
        out[:, 1] = GRAVITY * np.cos(tilt)
        sway = 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
        out[:, 2] = sway
        noise = subj["noise"]
    out += rng.normal(0, noise, out.shape)
    return out


def generate(out_dir: Path, params: Params, seed: int) -> dict:
    """Write a synthetic WISDM v1.1 raw file; sizes from the `data.har` params group."""
    n_users = params.int("n_users", lo=2)
    seconds = params.float("seconds_per_user", lo=10)
    fs = params.float("sample_rate", lo=1)
    segment_s = params.float("segment_seconds", lo=1)
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    counts = {a: 0 for a in ACTIVITIES}
    for user in range(1, n_users + 1):
        subj = {
            "cadence": rng.uniform(0.8, 1.2),
            "amplitude": rng.uniform(0.6, 1.4),
            "phases": rng.uniform(0, 2 * np.pi, 3),
            "noise": rng.uniform(0.3, 1.0),
            "sit_tilt": rng.uniform(55, 95),
            "stand_tilt": rng.uniform(-15, 25),
            "rotation": _rotation(rng, 35.0),
        }
        t_ns = int(rng.integers(10**12, 10**13))
        # Segments of each activity in random order, total time split as in the real file.
        plan = []
        for act in ACTIVITIES:
            n_seg = max(1, int(round(seconds * REAL_SHARE[act] / segment_s)))
            plan += [act] * n_seg
        rng.shuffle(plan)
        for act in plan:
            n = int(round(segment_s * fs * rng.uniform(0.8, 1.2)))
            sig = _activity_signal(act, n, fs, subj, rng) @ subj["rotation"].T
            ts = t_ns + (np.arange(n) * (1e9 / fs)).astype(np.int64)
            t_ns = int(ts[-1]) + int(rng.integers(1, 5) * 1e9)
            lines += [f"{user},{act},{tt},{x:.6g},{y:.6g},{z:.6g};"
                      for tt, (x, y, z) in zip(ts.tolist(), sig.tolist())]
            counts[act] += n
    (out_dir / RAW_FILE).write_text("\n".join(lines) + "\n")
    return {"users": n_users, "records": len(lines), "per_activity": counts}


def install_real(files: dict[str, Path], out_dir: Path, params: Params) -> dict:
    """Unpack the WISDM archive and keep the raw file under its own name."""
    from dlsys.data.download import extract_tar

    tmp = out_dir / ".extract"
    extract_tar(files[ARCHIVE], tmp)
    found = sorted(p for p in tmp.rglob(RAW_FILE) if p.is_file() and not p.is_symlink())
    if not found:
        raise DataFormatError(f"{files[ARCHIVE]}: archive has no {RAW_FILE}")
    found[0].replace(out_dir / RAW_FILE)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    rec = read_raw(out_dir / RAW_FILE)
    return {"users": int(len(np.unique(rec.user))), "records": int(len(rec.user)), "skipped": rec.skipped}


def load_har(raw_dir: str | Path = "data/raw/har") -> HarRecords:
    """The acquired raw file of data/raw/har/ (every record parsed and checked)."""
    from dlsys.data.registry import require_raw_dir

    return read_raw(require_raw_dir(raw_dir) / RAW_FILE)


SPEC = register(DatasetSpec(
    name="har",
    generate=generate,
    install_real=install_real,
    # The WISDM lab publishes no checksum for this archive (none found): its SHA-256 is pinned on first
    # use in data/download-pins.json (trust on first use), and a different file is refused later.
    downloads=[Download(ARCHIVE, ("https://www.cis.fordham.edu/wisdm/includes/datasets/latest/" + ARCHIVE,),
                        md5=None, sha256=None)],
    licence="WISDM Lab, Fordham University: free for research, cite Kwapisz, Weiss & Moore (2010)",
    validate=load_har,
    preview="har",
))
