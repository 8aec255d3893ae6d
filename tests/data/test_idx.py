from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.data.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, name, dtype):
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, arr)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, arr)


def test_written_bytes_follow_the_spec(tmp_path):
    write_idx(tmp_path / "l", np.array([7, 2], np.uint8))
    assert (tmp_path / "l").read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x02\x07\x02"


def test_truncated_body(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((5, 28, 28), np.uint8))
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    (tmp_path / "t.gz").write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DataFormatError, match="truncated"):
        read_idx(tmp_path / "t.gz")


def test_truncated_gzip_stream(tmp_path):
    write_idx(tmp_path / "x.gz", np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8))
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "t.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="gzip"):
        read_idx(tmp_path / "t.gz")


def test_bad_magic_and_wrong_dims(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataFormatError, match="magic"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "img", np.zeros((2, 27, 28), np.uint8))
    with pytest.raises(DataFormatError, match="shape"):
        read_idx(tmp_path / "img", expect_ndim=3, expect_shape_tail=(28, 28))
    with pytest.raises(DataFormatError, match="dimensions"):
        read_idx(tmp_path / "img", expect_ndim=1)


def test_missing_file(tmp_path):
    with pytest.raises(MissingDataError, match="nope"):
        read_idx(tmp_path / "nope")


def test_gzip_bomb_is_refused_before_it_is_decompressed_whole(tmp_path):
    """A few kB of .gz that would inflate far beyond any MNIST file stops at the cap, with one message."""
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    header = struct.pack(">HBB3I", 0, 0x08, 3, 4000, 28, 28)
    bomb.write_bytes(gzip.compress(header + b"\0" * (4000 * 28 * 28)))
    assert bomb.stat().st_size < 10_000
    with pytest.raises(DataFormatError, match="decompresses to more than 1 MB"):
        read_idx(bomb, max_mb=1)
    assert read_idx(bomb, max_mb=4).shape == (4000, 28, 28)  # within the cap it is an ordinary file


def test_multi_member_and_zero_padded_gzip_read_like_gzip_module(tmp_path):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "one.gz", arr)
    raw = gzip.decompress((tmp_path / "one.gz").read_bytes())
    two = tmp_path / "two.gz"
    two.write_bytes(gzip.compress(raw[:100]) + gzip.compress(raw[100:]) + b"\0" * 16)
    np.testing.assert_array_equal(read_idx(two), arr)
