"""IDX files (MNIST's format), gzipped or raw, with validation of magic number, dims and length."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.core.outputs import atomic_path

# Type codes from the IDX specification.
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
          np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


# The most an IDX file may decompress to (MNIST's largest is 47 MB): a small crafted .gz ("gzip bomb")
# is refused once its output passes this, before it can fill memory.
MAX_DECOMPRESSED_MB = 1024


def _gunzip(path: Path, raw: bytes, limit: int) -> bytes:
    out = bytearray()
    rest = raw
    try:
        while rest:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += d.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise DataFormatError(f"{path}: decompresses to more than {limit >> 20} MB; refused "
                                      f"(not an MNIST-sized IDX file)")
            if not d.eof:
                raise DataFormatError(f"{path}: corrupt or truncated gzip stream (ends before its last block)")
            rest = d.unused_data.lstrip(b"\0")  # a further member (or zero padding), as `gzip.decompress` reads
    except zlib.error as exc:
        raise DataFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    return bytes(out)


def _read_bytes(path: Path, max_mb: float = MAX_DECOMPRESSED_MB) -> bytes:
    if not path.exists():
        raise MissingDataError(f"{path}: file not found")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return _gunzip(path, raw, int(max_mb * 2**20))
    return raw


def read_idx(path: str | Path, expect_ndim: int | None = None,
             expect_shape_tail: tuple[int, ...] | None = None, max_mb: float = MAX_DECOMPRESSED_MB) -> np.ndarray:
    path = Path(path)
    data = _read_bytes(path, max_mb)
    if len(data) < 4:
        raise DataFormatError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _DTYPES or ndim == 0:
        raise DataFormatError(f"{path}: bad IDX magic number 0x{data[:4].hex()}")
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataFormatError(f"{path}: expected {expect_ndim} dimensions, header says {ndim}")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise DataFormatError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header_end])
    if expect_shape_tail is not None and tuple(dims[1:]) != tuple(expect_shape_tail):
        raise DataFormatError(f"{path}: expected items of shape {expect_shape_tail}, header says {dims[1:]}")
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = len(data) - header_end
    if body != expected:
        raise DataFormatError(f"{path}: truncated or padded IDX body: header {dims} needs {expected} bytes, "
                              f"found {body}")
    arr = np.frombuffer(data, dtype=dtype, offset=header_end).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write an IDX file (gzipped when the name ends in .gz), atomically."""
    path = Path(path)
    arr = np.asarray(array)
    big = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    if np.dtype(big) not in _CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    header = struct.pack(">HBB", 0, _CODES[np.dtype(big)], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(big, copy=False).tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    with atomic_path(path) as tmp:
        # mtime=0: the same array gives the same bytes, so DVC hashes are reproducible
        tmp.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path
