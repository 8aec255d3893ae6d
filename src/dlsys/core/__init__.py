"""Shared plumbing used by every stage: params, errors, atomic outputs, device, seeds, stage runner."""

from dlsys.core.errors import UserError
from dlsys.core.params import Params, load_params
from dlsys.core.device import device_from_params, resolve_device
from dlsys.core.seed import seed_everything
from dlsys.core.outputs import (
    atomic_dir,
    atomic_path,
    write_json,
    write_metrics,
    write_table_csv,
    write_timings,
    save_torch,
    load_torch,
)

__all__ = [
    "UserError",
    "Params",
    "load_params",
    "device_from_params",
    "resolve_device",
    "seed_everything",
    "atomic_dir",
    "atomic_path",
    "write_json",
    "write_metrics",
    "write_table_csv",
    "write_timings",
    "save_torch",
    "load_torch",
]
