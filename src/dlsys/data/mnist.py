"""MNIST: IDX files in data/raw/mnist/ (real: downloaded; synthetic: generated from sklearn digits)."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError, UserError
from dlsys.core.params import Params
from dlsys.data.idx import read_idx, write_idx
from dlsys.data.inputs import Placed
from dlsys.data.registry import require_raw_dir, DatasetSpec, Download, dataset_source, register
from dlsys.data.synth_digits import DigitStyle, make_digit_set, source_split

FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/",
           "http://yann.lecun.com/exdb/mnist/")
# Published MD5 sums of the four original files.
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Published MD5 sums of the same files uncompressed (what `gunzip -k` gives, and torchvision keeps).
MD5_IDX = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
TORCHVISION_RAW = "MNIST/raw/"  # torchvision's layout, holding both forms


def placed_forms(gz_name: str) -> tuple[Placed, ...]:
    """What a user may hold instead of `gz_name`, each verified against the checksum of its own form."""
    idx = gz_name.removesuffix(".gz")
    return (Placed(idx, f"uncompressed {idx}", md5=MD5_IDX[idx]),
            Placed(TORCHVISION_RAW + gz_name, gz_name, md5=MD5[gz_name]),
            Placed(TORCHVISION_RAW + idx, f"uncompressed {idx}", md5=MD5_IDX[idx]))


@dataclass
class MnistData:
    x_train: np.ndarray  # uint8 (N, 28, 28)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def load_mnist(raw_dir: str | Path = "data/raw/mnist") -> MnistData:
    raw_dir = require_raw_dir(raw_dir)
    arrays = {}
    for key, name in FILES.items():
        images = key.startswith("x")
        arr = read_idx(raw_dir / name, expect_ndim=3 if images else 1,
                       expect_shape_tail=(28, 28) if images else ())
        arrays[key] = arr if images else arr.astype(np.int64)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise DataFormatError(f"{raw_dir}: {split} has {len(x)} images but {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataFormatError(f"{raw_dir}: {split} labels outside 0..9")
    return MnistData(**arrays, source=dataset_source(raw_dir))


def style_from_params(p: Params) -> DigitStyle:
    scale = p.list("scale", (int, float), min_len=2, lo=0.1)
    stroke = p.list("stroke", (int, float), min_len=2)
    ink = p.list("ink_ramp", (int, float), min_len=2, lo=0, hi=1)
    if ink[0] >= ink[1]:
        raise UserError(f"params.yaml: 'data.mnist.ink_ramp' must be increasing, got {ink}")
    return DigitStyle(rotation_deg=p.float("rotation_deg", lo=0, hi=180), shear=p.float("shear", lo=0),
                      scale=(scale[0], scale[1]), shift_px=p.float("shift_px", lo=0),
                      elastic_alpha=p.float("elastic_alpha", lo=0), elastic_sigma=p.float("elastic_sigma", lo=0.1),
                      stroke=(stroke[0], stroke[1]), ink_ramp=(ink[0], ink[1]))


def generate(out: Path, p: Params, seed: int) -> dict:
    n_train, n_test = p.int("n_train", lo=10), p.int("n_test", lo=10)
    style = style_from_params(p)
    tri, trl, tei, tel = source_split(p.float("test_fraction", lo=0.05, hi=0.95), seed)
    x_train, y_train = make_digit_set(n_train, tri, trl, style, seed + 1)
    x_test, y_test = make_digit_set(n_test, tei, tel, style, seed + 2)
    for key, arr in {"x_train": x_train, "y_train": y_train.astype(np.uint8),
                     "x_test": x_test, "y_test": y_test.astype(np.uint8)}.items():
        write_idx(out / FILES[key], arr)
    return {"n_train": n_train, "n_test": n_test, "train_sources": len(tri), "test_sources": len(tei)}


def install_real(files: dict[str, Path], out: Path, p: Params) -> dict:
    forms = {}
    for name in FILES.values():
        src = files[name]
        with open(src, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        if gzipped:
            shutil.copyfile(src, out / name)
        else:  # verified uncompressed IDX: stored gzipped under the usual name, mtime 0 (reproducible bytes)
            (out / name).write_bytes(gzip.compress(src.read_bytes(), compresslevel=6, mtime=0))
        forms[name] = "gz" if gzipped else "idx"
    d = load_mnist_arrays(out)
    summary = {"n_train": len(d["y_train"]), "n_test": len(d["y_test"]), "forms": forms}
    if "idx" in forms.values():
        summary["note"] = ("uncompressed IDX file(s) verified against the published uncompressed MD5s and "
                           "stored gzipped (the bytes of a .gz differ from the official archive; the data do not)")
    return summary


def load_mnist_arrays(raw_dir: Path) -> dict:
    return {key: read_idx(raw_dir / name) for key, name in FILES.items()}


SPEC = register(DatasetSpec(
    name="mnist", generate=generate, install_real=install_real, validate=load_mnist, preview="mnist",
    downloads=[Download(f, tuple(m + f for m in MIRRORS), md5=MD5[f], placed=placed_forms(f)) for f in FILES.values()],
    licence="MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0",
))
