"""Check a dataset directory with the project's own reader before running the pipeline on it.

    python -m dlsys.data.check mnist [--raw-dir data/raw/mnist]

Prints a one-line summary, or one clear error line (exit status 2) for missing, corrupt, hostile or
wrongly shaped files: the same checks every stage applies when it reads the data.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

import numpy as np

from dlsys.core.errors import UserError
from dlsys.core.stage import run_stage

log = logging.getLogger("dlsys.check")

LOADERS = {
    "mnist": "dlsys.data.mnist:load_mnist",
    "sevens": "dlsys.data.sevens:load_sevens",
    "cifar10": "dlsys.data.cifar10:load_cifar10",
    "denoise": "dlsys.data.audio.sets:load_denoise",
    "timit_denoise": "dlsys.data.audio.sets:load_timit",
    "speakers": "dlsys.data.audio.sets:load_speakers",
    "speech_commands": "dlsys.data.audio.sets:load_speech_commands",
    "har": "dlsys.data.har:load_har",
}


def load(name: str, raw_dir: str | Path):
    if name not in LOADERS:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(LOADERS)}")
    module, func = LOADERS[name].split(":")
    return getattr(importlib.import_module(module), func)(raw_dir)


def describe(data) -> str:
    parts = []
    for key, value in vars(data).items():
        if isinstance(value, np.ndarray):
            parts.append(f"{key}={value.dtype}{list(value.shape)}")
        elif isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            parts.append(f"{key}={len(value)} arrays")
        elif isinstance(value, (str, int, float)):
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--raw-dir", default=None, help="default: data/raw/<dataset>")
    args = ap.parse_args()
    data = load(args.dataset, args.raw_dir or Path("data/raw") / args.dataset)
    log.info("%s: ok (%s)", args.dataset, describe(data))


if __name__ == "__main__":
    run_stage(main, "check")
