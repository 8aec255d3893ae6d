"""CIFAR-10 in its python-pickle layout: data/raw/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}.

Every batch is read through the restricted unpickler: the real files are python-2 pickles of a dict
with `data` (N×3072 uint8, channel-major rows) and `labels`; nothing but plain data is admitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError
from dlsys.core.params import Params
from dlsys.data.download import extract_tar
from dlsys.data.registry import require_raw_dir, DatasetSpec, Download, dataset_source, register
from dlsys.data.safe_pickle import dump_pickle, load_pickle

SUBDIR = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
ARCHIVE = Download("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                   md5="c58f30108f718f92721af3b95e74349a")


@dataclass
class CifarData:
    x_train: np.ndarray  # uint8 (N, 32, 32, 3)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str


def _str_keys(d: dict, path: Path) -> dict:
    if not isinstance(d, dict):
        raise DataFormatError(f"{path}: expected a dict, got {type(d).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _str_keys(load_pickle(path), path)
    if "data" not in d or "labels" not in d:
        raise DataFormatError(f"{path}: missing 'data' or 'labels'")
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFormatError(f"{path}: 'data' must be uint8 N×3072, got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise DataFormatError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataFormatError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def read_meta(path: Path) -> list[str]:
    d = _str_keys(load_pickle(path), path)
    names = d.get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise DataFormatError(f"{path}: 'label_names' must list 10 class names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def load_cifar10(raw_dir: str | Path = "data/raw/cifar10") -> CifarData:
    raw_dir = require_raw_dir(raw_dir)
    x_train, y_train, x_test, y_test, names = load_cifar10_arrays(raw_dir)
    return CifarData(x_train, y_train, x_test, y_test, names, dataset_source(raw_dir))


def write_cifar_batches(base: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                        y_test: np.ndarray, class_names: list[str]) -> None:
    """Write arrays in CIFAR-10's native pickle layout (5 training batches, test batch, meta)."""
    base.mkdir(parents=True, exist_ok=True)

    def batch(x, y, label, start):
        rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072).astype(np.uint8)
        return {b"batch_label": label.encode(), b"labels": [int(v) for v in y], b"data": rows,
                b"filenames": [f"synthetic_{start + i:06d}.png".encode() for i in range(len(x))]}

    chunks = np.array_split(np.arange(len(x_train)), len(TRAIN_BATCHES))
    for i, (name, idx) in enumerate(zip(TRAIN_BATCHES, chunks)):
        dump_pickle(batch(x_train[idx], y_train[idx], f"training batch {i + 1} of 5", int(idx[0]) if len(idx) else 0),
                    base / name)
    dump_pickle(batch(x_test, y_test, "testing batch 1 of 1", 0), base / TEST_BATCH)
    dump_pickle({b"num_cases_per_batch": len(chunks[0]), b"label_names": [n.encode() for n in class_names],
                 b"num_vis": 3072}, base / META)


def generate(out: Path, p: Params, seed: int) -> dict:
    from dlsys.data.synth_cifar import generate as draw_scenes

    n_train, n_test = p.int("n_train", lo=10), p.int("n_test", lo=10)
    x_train, y_train, x_test, y_test, names = draw_scenes(n_train, n_test, seed, p)
    write_cifar_batches(out / SUBDIR, x_train, y_train, x_test, y_test, names)
    return {"n_train": n_train, "n_test": n_test, "class_names": names}


def install_real(files: dict[str, Path], out: Path, p: Params) -> dict:
    extract_tar(files[ARCHIVE.filename], out, members_prefix=SUBDIR)
    d = load_cifar10_arrays(out)
    return {"n_train": len(d[1]), "n_test": len(d[3]), "class_names": d[4]}


def load_cifar10_arrays(raw_dir: Path):
    base = raw_dir / SUBDIR
    parts = [read_batch(base / b) for b in TRAIN_BATCHES]
    x_test, y_test = read_batch(base / TEST_BATCH)
    return (np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts]), x_test, y_test,
            read_meta(base / META))


def preview(raw_dir: Path, plots: Path, source: str) -> None:
    from dlsys.plots import image_grid, save_figure, titled

    x, y, _, _, names = load_cifar10_arrays(raw_dir)
    cells = []
    for k in range(10):
        idx = np.flatnonzero(y == k)[:10]
        cells += [x[i] for i in idx] + [None] * (10 - len(idx))
    save_figure(image_grid(cells, 10, 10, titled("CIFAR-10 train samples, one row per class", source),
                           row_labels=names, cell=0.8), plots / "samples.png")


SPEC = register(DatasetSpec(
    name="cifar10", generate=generate, install_real=install_real, preview=preview, downloads=[ARCHIVE],
    licence="CIFAR-10: Alex Krizhevsky, Learning Multiple Layers of Features from Tiny Images (2009); "
            "free for research use with citation",
))
