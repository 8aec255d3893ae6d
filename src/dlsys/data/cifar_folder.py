"""CIFAR-10 from an extracted `cifar-10-batches-py/` folder (what torchvision and most users keep).

The folder is copied file by file (no links followed), every batch is read back through the
restricted unpickler, and the counts are checked (5 training batches, a test batch, 10 classes).
Batches whose bytes are not the published ones (rebuilt from JPEGs, re-pickled) are accepted when
they read correctly, and dataset.json says so: results on them are not comparable to the literature.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError
from dlsys.data.inputs import Placed

SUBDIR = "cifar-10-batches-py"
# MD5 of each file of the official python batches (as torchvision publishes them).
PUBLISHED_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
FOLDER = Placed(SUBDIR, "extracted cifar-10-batches-py/ folder (data_batch_1..5, test_batch, batches.meta)",
                folder=True, members=tuple(PUBLISHED_MD5))
OFFICIAL_COUNTS = {"train": 50000, "test": 10000}


def install_folder(src: Path, out: Path, load_arrays) -> dict:
    """Copy the seven batch files of `src` into out/cifar-10-batches-py/ and check them."""
    from dlsys.data.download import file_digest

    base = out / SUBDIR
    base.mkdir(parents=True)
    for name in PUBLISHED_MD5:
        path = src / name
        if path.is_symlink() or not path.is_file():
            raise DataFormatError(f"{path}: missing or not a regular file (links are refused)")
        shutil.copyfile(path, base / name)
    x_train, y_train, x_test, y_test, names = load_arrays(out)
    for split, y in (("train", y_train), ("test", y_test)):
        classes = np.bincount(y, minlength=10)
        if (classes == 0).any():
            raise DataFormatError(f"{src}: the {split} batches lack class(es) "
                                  f"{', '.join(str(k) for k in np.flatnonzero(classes == 0))}")
    differ = sorted(n for n, md5 in PUBLISHED_MD5.items() if file_digest(base / n, "md5") != md5)
    summary = {"n_train": int(len(y_train)), "n_test": int(len(y_test)), "class_names": names,
               "form": "extracted folder", "published_batches": not differ}
    notes = []
    if differ:
        notes.append(f"{len(differ)} of 7 files differ from the published batches ({', '.join(differ)}): "
                     "the data read correctly but are not the official bytes (e.g. rebuilt from JPEGs); "
                     "accuracies are not comparable with published CIFAR-10 results")
    counts = {"train": len(y_train), "test": len(y_test)}
    if counts != OFFICIAL_COUNTS:
        notes.append(f"{counts['train']} training and {counts['test']} test images (official: 50,000 and 10,000)")
    if notes:
        summary["note"] = "; ".join(notes)
    return summary
