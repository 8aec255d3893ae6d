"""The course's "poor sevens": rotated, binarised, thick-stroked 7s in tr7.pkl / te7.pkl (N×28×28).

Synthetic mode draws sevens from the synthetic-digit generator (train and test from disjoint source
pools), rotates each by a random angle (counter-clockwise positive, degrees) and binarises it with
thick strokes; the true angles go to the sidecar `angles.json` so the VAE stage can score itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlsys.core.errors import DataFormatError
from dlsys.core.outputs import write_json
from dlsys.core.params import Params
from dlsys.data.registry import (CourseFile, DatasetSpec, dataset_source, max_array_mb, read_dataset_meta, register,
                                 require_raw_dir)
from dlsys.data.safe_pickle import dump_pickle, load_pickle
from dlsys.data.synth_digits import SIZE, affine_elastic, make_digit_set, source_split, vary_stroke

FILES = {"train": "tr7.pkl", "test": "te7.pkl"}
ANGLES = "angles.json"


@dataclass
class SevensData:
    train: np.ndarray  # float32 (N, 28, 28) in [0, 1]
    test: np.ndarray
    angles_train: np.ndarray | None  # float32 degrees (synthetic only)
    angles_test: np.ndarray | None
    source: str


def read_sevens_pickle(path: Path) -> np.ndarray:
    arr = load_pickle(path, max_array_mb=max_array_mb(path.parent))
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "buif":
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise DataFormatError(f"{path}: expected a real-valued N×28×28 array of images, got {got}")
    if arr.ndim == 2 and arr.shape[1] == SIZE * SIZE:
        arr = arr.reshape(-1, SIZE, SIZE)
    if arr.ndim != 3 or arr.shape[1:] != (SIZE, SIZE) or len(arr) == 0:
        raise DataFormatError(f"{path}: expected an N×28×28 array of images, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataFormatError(f"{path}: contains NaN or infinite pixels")
    lo, hi = float(arr.min()), float(arr.max())
    # Pixels are grey levels in [0, 1] or [0, 255]; anything else is not an image (e.g. scaled by 1e30).
    if lo < 0 or hi > 255:
        raise DataFormatError(f"{path}: pixel values must lie in [0, 1] or [0, 255], found {lo:g}..{hi:g}")
    arr = arr.astype(np.float32)
    if hi > 1.0:
        arr = arr / np.float32(255.0)  # stored as 0..255
    return arr


def load_sevens(raw_dir: str | Path = "data/raw/sevens") -> SevensData:
    raw_dir = require_raw_dir(raw_dir)
    train = read_sevens_pickle(raw_dir / FILES["train"])
    test = read_sevens_pickle(raw_dir / FILES["test"])
    angles_tr = angles_te = None
    if (raw_dir / ANGLES).exists():
        try:
            meta = json.loads((raw_dir / ANGLES).read_text())
            angles_tr = np.asarray(meta["train"], dtype=np.float32)
            angles_te = np.asarray(meta["test"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{raw_dir / ANGLES}: unreadable ({type(exc).__name__}: {exc})") from None
        if angles_tr.ndim != 1 or angles_te.ndim != 1 or not (np.isfinite(angles_tr).all() and np.isfinite(angles_te).all()):
            raise DataFormatError(f"{raw_dir / ANGLES}: angles must be two lists of finite numbers")
        if len(angles_tr) != len(train) or len(angles_te) != len(test):
            raise DataFormatError(f"{raw_dir / ANGLES}: angle counts do not match the images")
    return SevensData(train, test, angles_tr, angles_te, dataset_source(raw_dir))


def rotate_binarise(images: np.ndarray, angles_deg: np.ndarray, stroke_px: float, threshold: float) -> np.ndarray:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    n = len(x)
    zeros = torch.zeros(n)
    x = affine_elastic(x, torch.from_numpy(angles_deg.astype(np.float32)), zeros, torch.ones(n),
                       torch.zeros(n, 2), alpha=0.0, sigma=1.0, gen=torch.Generator())
    x = vary_stroke(x, torch.full((n,), float(stroke_px)))
    return (x.squeeze(1) > threshold).to(torch.float32).numpy()


def generate(out: Path, p: Params, seed: int) -> dict:
    from dlsys.data.mnist import style_from_params

    style = style_from_params(Params(_mnist_style_defaults(), "data.mnist"))
    max_angle = p.float("max_angle_deg", lo=0, hi=180)
    stroke, threshold = p.float("stroke_px", lo=0, hi=4), p.float("threshold", lo=0.01, hi=0.99)
    tri, trl, tei, tel = source_split(0.3, seed)
    rng = np.random.default_rng(seed + 7)
    result, angles = {}, {}
    for split, pool, labels, n in (("train", tri, trl, p.int("n_train", lo=10)),
                                   ("test", tei, tel, p.int("n_test", lo=10))):
        imgs, _ = make_digit_set(n, pool, labels, style, seed + 70 + len(split), classes=np.array([7]))
        ang = rng.uniform(-max_angle, max_angle, size=n).astype(np.float32)
        result[split] = rotate_binarise(imgs, ang, stroke, threshold)
        angles[split] = ang
        dump_pickle(result[split], out / FILES[split])
    write_json(out / ANGLES, {"convention": "degrees, counter-clockwise positive",
                              "train": angles["train"].tolist(), "test": angles["test"].tolist()})
    return {"n_train": len(result["train"]), "n_test": len(result["test"]), "max_angle_deg": max_angle}


def _mnist_style_defaults() -> dict:
    # The sevens are upright digits before their big rotation: mild distortion only.
    return {"rotation_deg": 5, "shear": 0.1, "scale": [0.9, 1.1], "shift_px": 0.5, "elastic_alpha": 1.0,
            "elastic_sigma": 3.0, "stroke": [-0.4, 0.4], "ink_ramp": [0.15, 0.65]}


def install_real(files: dict[str, Path], out: Path, p: Params) -> dict:
    arrays = {split: read_sevens_pickle(files[name]) for split, name in FILES.items()}
    for split, name in FILES.items():
        dump_pickle(arrays[split], out / name)
    return {"n_train": len(arrays["train"]), "n_test": len(arrays["test"])}


SPEC = register(DatasetSpec(
    name="sevens", generate=generate, install_real=install_real, validate=load_sevens, preview="sevens", pickled=True,
    course_files=[CourseFile("tr7.pkl", "6265×28×28 rotated sevens from homework 4 (training set)"),
                  CourseFile("te7.pkl", "rotated sevens from homework 4 (test set), N×28×28")],
    licence="course material (homework 4); not redistributable",
))
