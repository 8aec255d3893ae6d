"""A restricted unpickler for course files and CIFAR batches.

Pickles can execute arbitrary code on load (any global with a `__reduce__`). Ours admits only what
numpy arrays, lists, dicts, tuples, numbers, strings and bytes need, and refuses every other global:
a crafted pickle fails with a clear error and its payload never runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.core.outputs import atomic_path

# (module, name) pairs a numpy-array pickle legitimately references, across numpy 1.x and 2.x.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # python-2 era pickles store array bytes through codecs.encode
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise RefusedGlobal(f"refusing global {module}.{name}")


def loads_restricted(data: bytes, encoding: str = "latin1") -> Any:
    return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def load_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """Load a data pickle through the restricted unpickler; refuse anything but plain data."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: file not found")
    try:
        return loads_restricted(path.read_bytes(), encoding=encoding)
    except RefusedGlobal as exc:
        raise DataFormatError(f"{path}: refused: not a plain-data pickle ({exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc})") from None


def dump_pickle(obj: Any, path: str | Path, protocol: int = 2) -> Path:
    """Write a data pickle atomically (protocol 2, as the course and CIFAR files use)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
    return path
