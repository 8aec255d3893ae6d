"""One `device: auto|cpu|cuda` parameter, resolved once per stage."""

from __future__ import annotations

import logging

import torch

from dlsys.core.errors import UserError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cpu":
        dev = torch.device("cpu")
    elif name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("params.yaml: device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
        dev = torch.device("cuda")
    else:
        raise UserError(f"params.yaml: 'device' must be auto, cpu or cuda, got {name!r}")
    if dev.type == "cuda":
        # Fixed-size inputs everywhere: let cuDNN pick its fastest kernels.
        torch.backends.cudnn.benchmark = True
    log.info("device: %s", dev)
    return dev


def device_from_params(p) -> torch.device:
    """The device named by the top-level `device` param (validated, naming the key on error)."""
    return resolve_device(p.choice("device", list(DEVICE_CHOICES)))
