"""A restricted unpickler for course files and CIFAR batches.

Pickles can execute arbitrary code on load (any global with a `__reduce__`). Ours admits only what
numpy arrays, lists, dicts, tuples, numbers, strings and bytes need, and refuses every other global:
a crafted pickle fails with a clear error and its payload never runs.

The numpy globals it does admit are wrapped, because they are dangerous too: `_reconstruct` and an
array's `__setstate__` take the shape from the file, so a 60-byte pickle can ask for a 1 TiB array
(a denial of service), and numpy crashes outright on an object array whose state lists fewer items
than its shape. Every array's size is checked against a cap *before* anything is allocated, its
state is checked for consistency, and only simple dtypes (numbers, bools, strings, objects) pass.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import math
import pickle
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.core.outputs import atomic_path

# Used when no cap was set for this read (the acquisition stage sets `data.limits.max_array_mb`, and
# records it in dataset.json for later readers); CIFAR's batches are 30 MB, the course pickles 32 MB.
DEFAULT_MAX_ARRAY_MB = 1024.0
_MAX_ARRAY_BYTES: contextvars.ContextVar[int] = contextvars.ContextVar(
    "max_array_bytes", default=int(DEFAULT_MAX_ARRAY_MB * 2**20))

_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
# A dtype pickles as dtype(<code>, align, copy) plus a state; codes of plain numbers, bools, strings, objects.
_DTYPE_CODE = re.compile(r"^[<>|=]?(?:[?bBhHiIlLqQpPefdgFDG]|[biufc]\d{1,2}|[SU]\d{0,9}|O\d?)$")
_KINDS = set("biufcSUO")


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list, or asks for something refused."""


@contextlib.contextmanager
def array_limit(max_mb: float) -> Iterator[None]:
    """Cap the size of every array built by the reads inside the block (MB)."""
    token = _MAX_ARRAY_BYTES.set(int(max_mb * 2**20))
    try:
        yield
    finally:
        _MAX_ARRAY_BYTES.reset(token)


def _check_size(shape: Any, dtype: np.dtype) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                               for d in shape):
        raise RefusedGlobal(f"array shape {shape!r} is not a tuple of non-negative integers")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    cap = _MAX_ARRAY_BYTES.get()
    if nbytes > cap:
        raise RefusedGlobal(f"an array of shape {shape} ({nbytes / 2**20:,.4g} MB) is larger than the "
                            f"{cap / 2**20:,.4g} MB cap (params.yaml: data.limits.max_array_mb)")
    return shape


class _DType:
    """Stands in for numpy.dtype while unpickling: builds only simple dtypes, validating their state."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not isinstance(code, str) or not _DTYPE_CODE.match(code):
            raise RefusedGlobal(f"dtype {code!r} is not a plain number, string or object type")
        self.dtype = np.dtype(code)
        if self.dtype.kind not in _KINDS:
            raise RefusedGlobal(f"dtype {code!r} is not a plain number, string or object type")

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 8 or any(s is not None for s in state[2:5]):
            raise RefusedGlobal("structured or sub-array dtypes are not plain data")
        endian, elsize = state[1], state[5]
        if endian not in ("<", ">", "|", "="):
            raise RefusedGlobal(f"dtype byte order {endian!r} is not valid")
        if endian in ("<", ">") and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(endian)
        if elsize not in (-1, 0, self.dtype.itemsize) and not (self.dtype.kind == "O"):
            raise RefusedGlobal(f"dtype state gives item size {elsize!r} for {self.dtype}")


def _as_dtype(value: Any) -> np.dtype:
    if isinstance(value, _DType):
        return value.dtype
    return _DType(value).dtype  # _reconstruct's third argument is a code such as b'b'


class _Array(np.ndarray):
    """An ndarray whose pickled state is checked before numpy acts on it (converted back after loading)."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise RefusedGlobal("array state is not (version, shape, dtype, fortran, data)")
        shape, dtype, fortran, data = state[-4:]
        dtype = _as_dtype(dtype)
        if isinstance(data, str):
            data = data.encode("latin1")  # python-2 pickles read with encoding="latin1"
        shape = _check_size(shape, dtype)
        if dtype.kind == "O":
            if not isinstance(data, list) or len(data) != math.prod(shape):
                raise RefusedGlobal(f"object array of shape {shape} does not list exactly that many items")
        elif not isinstance(data, (bytes, bytearray)) or len(data) != math.prod(shape) * dtype.itemsize:
            raise RefusedGlobal(f"array data does not match shape {shape} and dtype {dtype}")
        super().__setstate__((*state[:-4], shape, dtype, bool(fortran), data))


class _NDArrayClass:
    """numpy.ndarray as named in a pickle: only ever the first argument of `_reconstruct`, never called."""


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _Array:
    if not isinstance(subtype, _NDArrayClass):
        raise RefusedGlobal("_reconstruct may only build a numpy.ndarray")
    dtype = _as_dtype(dtype)
    return _Array(_check_size(shape, dtype), dtype)


def _scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _as_dtype(dtype)
    if isinstance(data, str):
        data = data.encode("latin1")
    if dtype.kind == "O" or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise RefusedGlobal(f"numpy scalar of {dtype} with {type(data).__name__} data")
    return np.frombuffer(data, dtype=dtype)[0].copy()


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    import codecs

    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise RefusedGlobal(f"_codecs.encode with {type(obj).__name__}, {encoding!r}")
    return codecs.encode(obj, encoding, errors)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _RECONSTRUCT:
            return _reconstruct
        if (module, name) in _SCALAR:
            return _scalar
        if (module, name) == ("numpy", "ndarray"):
            return _NDArrayClass()
        if (module, name) == ("numpy", "dtype"):
            return _DType
        if (module, name) == ("_codecs", "encode"):  # python-2 era pickles store array bytes this way
            return _codecs_encode
        raise RefusedGlobal(f"refusing global {module}.{name}")


def _plain(obj: Any) -> Any:
    """Replace the checked stand-ins by plain numpy objects, inside containers too."""
    if isinstance(obj, _Array):
        arr = obj.view(np.ndarray)
        if arr.dtype.kind == "O":
            out = np.empty(arr.size, dtype=object)
            for i, v in enumerate(arr.ravel()):
                out[i] = _plain(v)
            arr = out.reshape(arr.shape)
        return arr
    if isinstance(obj, (_DType, _NDArrayClass)):
        raise RefusedGlobal(f"a bare {type(obj).__name__.strip('_')} is not data")
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    return obj


def loads_restricted(data: bytes, encoding: str = "latin1") -> Any:
    return _plain(_RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load())


def load_pickle(path: str | Path, encoding: str = "latin1", max_array_mb: float | None = None) -> Any:
    """Load a data pickle through the restricted unpickler; refuse anything but plain data."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: file not found")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file")
    cap = array_limit(max_array_mb) if max_array_mb is not None else contextlib.nullcontext()
    try:
        with cap:
            return loads_restricted(path.read_bytes(), encoding=encoding)
    except RefusedGlobal as exc:
        raise DataFormatError(f"{path}: refused: not a plain-data pickle ({exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            UnicodeDecodeError, MemoryError, OverflowError, RecursionError) as exc:
        raise DataFormatError(f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc})") from None


def dump_pickle(obj: Any, path: str | Path, protocol: int = 2) -> Path:
    """Write a data pickle atomically (protocol 2, as the course and CIFAR files use)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
    return path
