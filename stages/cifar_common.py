"""Shared set-up of the CIFAR family's stages (issue 7): params, data on the device, batched accuracy."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dlsys.core.errors import MissingDataError
from dlsys.core import Params, load_params, device_from_params, seed_everything
from dlsys.data.cifar10 import load_cifar10
from dlsys.features.augment import to_unit

log = logging.getLogger("dlsys.cifar")
RAW = "data/raw/cifar10"
FAMILY = "cifar"


@dataclass
class Setup:
    params: Params
    device: torch.device
    generator: torch.Generator
    seed: int


def setup() -> Setup:
    p = load_params()
    seed = p.int("seed", lo=0)
    gen = seed_everything(seed)
    return Setup(p, device_from_params(p), gen, seed)


def load_unit(device: torch.device):
    """The CIFAR-10 arrays as [0, 1] NCHW tensors on `device`, labels as int64, plus source and names."""
    d = load_cifar10(RAW)
    return (to_unit(d.x_train, device), torch.as_tensor(d.y_train, device=device),
            to_unit(d.x_test, device), torch.as_tensor(d.y_test, device=device), d.source, d.class_names)


def cross_entropy(model: torch.nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """Top-1 accuracy over (x, y) in large batches (eval mode is the caller's business: fit sets it)."""
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for lo in range(0, len(x), batch):
        correct += (model(x[lo:lo + batch]).argmax(1) == y[lo:lo + batch]).sum()
    return float(correct) / max(len(x), 1)


def every(n: int, fn):
    """An `evaluate` for `fit` that runs `fn(model)` only every n-th epoch (and returns {} otherwise)."""
    state = {"epoch": 0}

    def evaluate(model, _epoch):
        state["epoch"] += 1
        return fn(model) if state["epoch"] % n == 0 else {}

    return evaluate


def read_curve(path: Path, y: str) -> tuple[list[int], list[float]]:
    if not path.exists():
        raise MissingDataError(f"{path}: not found; run its stage first (dvc repro)")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(y)]
    return [int(r["epoch"]) for r in rows], [float(r[y]) for r in rows]
