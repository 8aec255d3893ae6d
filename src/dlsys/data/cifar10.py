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
from dlsys.data.cifar_folder import FOLDER as CIFAR_FOLDER, install_folder
from dlsys.data.download import extract_tar
from dlsys.data.registry import require_raw_dir, DatasetSpec, Download, dataset_source, max_array_mb, register
from dlsys.data.safe_pickle import dump_pickle, load_pickle

SUBDIR = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
ARCHIVE = Download("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                   md5="c58f30108f718f92721af3b95e74349a", placed=(CIFAR_FOLDER,))


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
    d = _str_keys(load_pickle(path, max_array_mb=max_array_mb(path.parent.parent)), path)
    if "data" not in d or "labels" not in d:
        raise DataFormatError(f"{path}: missing 'data' or 'labels'")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFormatError(f"{path}: 'data' must be a uint8 N×3072 array, got {got}")
    labels = _labels(d["labels"], path)
    if len(labels) != len(data):
        raise DataFormatError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _labels(raw, path: Path) -> np.ndarray:
    """Class indices 0..9 from a list or 1-D integer array; floats, bools, strings, None and nested
    lists are refused rather than cast (1.7 would silently become class 1)."""
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iu"):
            raise DataFormatError(f"{path}: 'labels' must be a 1-D array of integers 0..9, got {raw.dtype} "
                                  f"{raw.shape}")
        labels = raw.astype(np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise DataFormatError(f"{path}: labels outside 0..9 (found {labels.min()}..{labels.max()})")
        return labels
    if not isinstance(raw, (list, tuple)):
        raise DataFormatError(f"{path}: 'labels' must be a list of integers 0..9, got {type(raw).__name__}")
    for v in raw:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise DataFormatError(f"{path}: 'labels' must be integers 0..9, found {v!r:.40}")
        if not 0 <= v <= 9:
            raise DataFormatError(f"{path}: labels outside 0..9 (found {v})")
    return np.asarray(raw, dtype=np.int64)


def read_meta(path: Path) -> list[str]:
    d = _str_keys(load_pickle(path), path)
    names = d.get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise DataFormatError(f"{path}: 'label_names' must list 10 class names")
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


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
    if files[ARCHIVE.filename].is_dir():  # the user placed an extracted cifar-10-batches-py/
        return install_folder(files[ARCHIVE.filename], out, load_cifar10_arrays)
    extract_tar(files[ARCHIVE.filename], out, members_prefix=SUBDIR)
    d = load_cifar10_arrays(out)
    return {"n_train": len(d[1]), "n_test": len(d[3]), "class_names": d[4]}


def load_cifar10_arrays(raw_dir: Path):
    base = raw_dir / SUBDIR
    parts = [read_batch(base / b) for b in TRAIN_BATCHES]
    x_test, y_test = read_batch(base / TEST_BATCH)
    return (np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts]), x_test, y_test,
            read_meta(base / META))


SPEC = register(DatasetSpec(
    name="cifar10", generate=generate, install_real=install_real, validate=load_cifar10, preview="cifar10",
    pickled=True, downloads=[ARCHIVE],
    licence="CIFAR-10: Alex Krizhevsky, Learning Multiple Layers of Features from Tiny Images (2009); "
            "free for research use with citation",
))
