"""The course's "poor sevens": rotated, binarised, thick-stroked 7s in tr7.pkl / te7.pkl (N×28×28).

Synthetic mode draws sevens from the synthetic-digit generator (train and test from disjoint source
pools), rotates each by a random angle (counter-clockwise positive, degrees) and binarises it with
thick strokes; the true angles go to the sidecar `angles.json` so the VAE stage can score itself.

Real mode copies the two pickles. The course files carry no angles, but the kit's sevens are every MNIST 7
in MNIST order, each rotated, thickened and binarised by a documented recipe; when the four MNIST files are
placed beside them, `recover_rotations` re-makes each source digit at every angle of a grid and keeps the
angle whose result matches best, so the VAE is scored against the rotation that was applied rather than
against a principal-axis estimate (which on these sevens agrees with the true rotation only at ρ ≈ 0.5).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlsys.core.errors import DataFormatError, UserError
from dlsys.core.outputs import write_json
from dlsys.core.params import Params
from dlsys.data.idx import read_idx
from dlsys.data.registry import (CourseFile, DatasetSpec, dataset_source, max_array_mb, read_dataset_meta, register,
                                 require_raw_dir)
from dlsys.data.safe_pickle import dump_pickle, load_pickle
from dlsys.data.synth_digits import SIZE, affine_elastic, make_digit_set, source_split, vary_stroke

log = logging.getLogger(__name__)

FILES = {"train": "tr7.pkl", "test": "te7.pkl"}
ANGLES = "angles.json"
TRUE_ANGLES = "sidecar (true rotation)"
# The MNIST files the kit's sevens were made from (optional: placed, they let acquire recover the angles).
MNIST_SOURCES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SEVEN = 7


@dataclass
class SevensData:
    train: np.ndarray  # float32 (N, 28, 28) in [0, 1]
    test: np.ndarray
    angles_train: np.ndarray | None  # float32 degrees (synthetic, or recovered from the MNIST sources)
    angles_test: np.ndarray | None
    source: str
    angles_method: str | None = None  # how the angles were obtained (None: no angles)


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
    angles_tr = angles_te = method = None
    if (raw_dir / ANGLES).exists():
        try:
            meta = json.loads((raw_dir / ANGLES).read_text())
            angles_tr = np.asarray(meta["train"], dtype=np.float32)
            angles_te = np.asarray(meta["test"], dtype=np.float32)
            method = str(meta.get("method", TRUE_ANGLES))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataFormatError(f"{raw_dir / ANGLES}: unreadable ({type(exc).__name__}: {exc})") from None
        if angles_tr.ndim != 1 or angles_te.ndim != 1 or not (np.isfinite(angles_tr).all() and np.isfinite(angles_te).all()):
            raise DataFormatError(f"{raw_dir / ANGLES}: angles must be two lists of finite numbers")
        if len(angles_tr) != len(train) or len(angles_te) != len(test):
            raise DataFormatError(f"{raw_dir / ANGLES}: angle counts do not match the images")
    return SevensData(train, test, angles_tr, angles_te, dataset_source(raw_dir), method)


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


@dataclass(frozen=True)
class KitRecipe:
    """params `data.sevens.recover_angles`: the kit's recipe (rotate about the centre with bilinear
    interpolation, grey-dilate with a flat `dilation_px` square, keep pixels above half the image's
    maximum) and how finely and how strictly to match it."""
    max_deg: float         # angles searched: [−max_deg, +max_deg]
    step_deg: float        # grid step (the recovered angle is within step/2 of the applied one when the best
                           # match is unique; see `recover_rotations` for ties)
    dilation_px: int
    min_iou: float         # a seven counts as matched when its best intersection-over-union reaches this
    min_matched: float     # fraction of sevens that must match, else the sources are not these sevens' own

    @classmethod
    def from_params(cls, p: Params) -> "KitRecipe":
        g = p.sub("recover_angles")
        r = cls(max_deg=g.float("max_deg", gt=0, hi=180), step_deg=g.float("step_deg", gt=0, hi=90),
                dilation_px=g.int("dilation_px", lo=1, hi=8), min_iou=g.float("min_iou", gt=0, hi=1),
                min_matched=g.float("min_matched", gt=0, hi=1))
        steps = 2 * r.max_deg / r.step_deg
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            raise UserError(f"params.yaml: 'data.sevens.recover_angles.step_deg' ({r.step_deg:g}) must divide "
                            f"2 × max_deg ({2 * r.max_deg:g}) a whole number of times")
        return r

    def grid(self) -> np.ndarray:
        n = int(round(2 * self.max_deg / self.step_deg))
        return np.linspace(-self.max_deg, self.max_deg, n + 1)

    def make(self, sources: np.ndarray, angle_deg: float) -> np.ndarray:
        """Every source (N, 28, 28, grey levels in [0, 1]) rotated by the same angle, as the kit made them.
        The kit binarises at half of each image's own maximum (fixed by the kit's recipe, not a param)."""
        from scipy import ndimage

        r = ndimage.rotate(sources, angle_deg, axes=(2, 1), reshape=False, order=1)
        r = ndimage.grey_dilation(r, size=(1, self.dilation_px, self.dilation_px))
        return r > r.max(axis=(1, 2), keepdims=True) / 2


def recover_rotations(rotated: np.ndarray, sources: np.ndarray, recipe: KitRecipe,
                      desc: str = "angles") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each rotated image (binary, N×28×28), the angle (degrees, counter-clockwise positive) at which
    its source, re-made by `recipe`, matches it best; that best intersection-over-union; and the width of
    the grid run that ties for it. A small seven re-made at neighbouring angles can give the same pixels,
    so the angle is the middle of the lowest and highest grid angles reaching the best IoU (taking the
    first would bias every tie towards −max_deg). The whole stack is rotated once per grid angle."""
    from tqdm.auto import tqdm

    if rotated.shape != sources.shape:
        raise ValueError(f"rotated {rotated.shape} and sources {sources.shape} differ")
    target = rotated > 0.5
    src = sources.astype(np.float64) / (255.0 if sources.dtype == np.uint8 else 1.0)
    best = np.full(len(src), -1.0)
    lo = np.zeros(len(src))
    hi = np.zeros(len(src))
    for angle in tqdm(recipe.grid(), desc=desc, leave=False, mininterval=1.0):
        made = recipe.make(src, float(angle))
        union = (made | target).sum(axis=(1, 2))
        iou = (made & target).sum(axis=(1, 2)) / np.maximum(union, 1)
        better, tied = iou > best, iou == best
        best[better], lo[better], hi[better] = iou[better], angle, angle
        hi[tied] = angle
    return ((lo + hi) / 2).astype(np.float32), best, hi - lo


def _mnist_sevens(files: dict[str, Path], split: str) -> np.ndarray:
    images, labels = MNIST_SOURCES[split]
    x = read_idx(files[images], expect_ndim=3, expect_shape_tail=(SIZE, SIZE))
    y = read_idx(files[labels], expect_ndim=1)
    if len(x) != len(y):
        raise DataFormatError(f"{files[images]}: {len(x)} images but {len(y)} labels in {files[labels]}")
    return x[y == SEVEN]


def recover_kit_angles(arrays: dict[str, np.ndarray], files: dict[str, Path], out: Path, p: Params) -> dict:
    """Write angles.json from the MNIST sources when all four files are placed and every check passes;
    returns what the acquire summary records ("angles": how, or why not)."""
    placed = [name for pair in MNIST_SOURCES.values() for name in pair if name in files]
    if not placed:
        return {"angles": "none (the course files carry no angles; place the four MNIST files beside them to "
                          "recover each seven's rotation)"}
    if len(placed) < 4:
        missing = [name for pair in MNIST_SOURCES.values() for name in pair if name not in files]
        raise DataFormatError(f"{files[placed[0]].parent}: only some MNIST source files are placed; also place "
                              f"{', '.join(missing)} (or remove them all)")
    recipe = KitRecipe.from_params(p)
    sources = {split: _mnist_sevens(files, split) for split in FILES}
    for split in FILES:  # both counts before minutes of matching
        n = len(arrays[split])
        if len(sources[split]) != n:
            reason = (f"not recovered: MNIST {split} holds {len(sources[split])} sevens and {FILES[split]} {n} "
                      f"images, so they are not the sources of these sevens")
            log.warning("sevens: angles %s", reason)
            return {"angles": reason}
    result: dict[str, np.ndarray] = {}
    stats = {}
    for split in FILES:
        angles, iou, tie = recover_rotations(arrays[split], sources[split], recipe, desc=f"angles {split}")
        matched = float(np.mean(iou >= recipe.min_iou))
        stats[split] = {"iou_min": round(float(iou.min()), 4), "iou_median": round(float(np.median(iou)), 4),
                        "matched": round(matched, 4), "tied_over_deg_max": round(float(tie.max()), 2),
                        "tied_fraction": round(float(np.mean(tie > 0)), 4)}
        if matched < recipe.min_matched:
            reason = (f"not recovered: only {matched:.1%} of {FILES[split]} match their MNIST source at "
                      f"IoU >= {recipe.min_iou} (need {recipe.min_matched:.0%}); these sevens were made another way")
            log.warning("sevens: angles %s", reason)
            return {"angles": reason}
        result[split] = angles
    method = (f"recovered from the MNIST sources: best of {len(recipe.grid())} angles in "
              f"±{recipe.max_deg:g}° (step {recipe.step_deg:g}°) under the kit's recipe")
    write_json(out / ANGLES, {"convention": "degrees, counter-clockwise positive", "method": method,
                              "match": stats, "train": result["train"].tolist(), "test": result["test"].tolist()})
    log.info("sevens: %s; median IoU %s / %s (train / test)", method, stats["train"]["iou_median"],
             stats["test"]["iou_median"])
    return {"angles": method, "angle_match": stats}


def install_real(files: dict[str, Path], out: Path, p: Params) -> dict:
    arrays = {split: read_sevens_pickle(files[name]) for split, name in FILES.items()}
    for split, name in FILES.items():
        dump_pickle(arrays[split], out / name)
    return {"n_train": len(arrays["train"]), "n_test": len(arrays["test"]),
            **recover_kit_angles(arrays, files, out, p)}


SPEC = register(DatasetSpec(
    name="sevens", generate=generate, install_real=install_real, validate=load_sevens, preview="sevens", pickled=True,
    course_files=[CourseFile("tr7.pkl", "6265×28×28 rotated sevens from homework 4 (training set)"),
                  CourseFile("te7.pkl", "rotated sevens from homework 4 (test set), N×28×28"),
                  *(CourseFile(name, f"MNIST's {name} (optional: the sevens' sources, to recover their rotations)",
                               (name.removesuffix(".gz"),), optional=True)
                    for pair in MNIST_SOURCES.values() for name in pair)],
    licence="course material (homework 4); not redistributable",
))
