"""The restricted unpickler admits plain data and refuses code."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from dlsys.core.errors import DataFormatError
from dlsys.data.safe_pickle import dump_pickle, load_pickle


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_plain_data_round_trips(tmp_path):
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": [1, 2, 3], "x": 1.5,
           "f32": np.ones((2, 2), np.float32)}
    dump_pickle(obj, tmp_path / "a.pkl")
    back = load_pickle(tmp_path / "a.pkl")
    np.testing.assert_array_equal(back[b"data"], obj[b"data"])
    assert back["labels"] == [1, 2, 3] and back["f32"].dtype == np.float32


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_hostile_pickle_is_refused_and_payload_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil(marker), protocol=protocol))
    with pytest.raises(DataFormatError, match="refused.*posix.system|refused.*os.system|refused"):
        load_pickle(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_hostile_global_inside_array_dict_is_refused(tmp_path):
    marker = tmp_path / "pwned2"
    payload = {"data": np.zeros(3), "trap": _Evil(marker)}
    (tmp_path / "mixed.pkl").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataFormatError):
        load_pickle(tmp_path / "mixed.pkl")
    assert not marker.exists()


def test_truncated_pickle_is_a_clear_error(tmp_path):
    data = pickle.dumps({"data": np.zeros(100)}, protocol=2)
    (tmp_path / "t.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="corrupt or truncated"):
        load_pickle(tmp_path / "t.pkl")


def _py2_array_pickle(raw: bytes, code: bytes = b"u1", shape=(3,)) -> bytes:
    """The layout of a python-2 numpy pickle (CIFAR's batches): the array bytes as a py2 str (BINSTRING)."""
    import struct

    def short(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    out = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + short(b"b") + b"\x87R"
    out += b"(K\x01(" + b"".join(b"J" + struct.pack("<i", d) for d in shape) + b"t"
    out += b"cnumpy\ndtype\n" + short(code) + b"K\x00K\x01\x87R(K\x03" + short(b"|")
    out += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    return out + b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb."


def test_python2_layout_arrays_load_exactly(tmp_path):
    (tmp_path / "py2.pkl").write_bytes(_py2_array_pickle(b"\x01\x02\xff"))
    arr = load_pickle(tmp_path / "py2.pkl")
    assert type(arr) is np.ndarray and arr.dtype == np.uint8 and arr.tolist() == [1, 2, 255]


def test_numpy_values_of_every_plain_kind_round_trip(tmp_path):
    obj = {"be": np.arange(6, dtype=">i4").reshape(2, 3), "u": np.array(["ab", "c"]), "b": np.array([True, False]),
           "o": np.array([1, "a", None], dtype=object), "scalar": np.float32(2.5), "ints": [np.int64(3)],
           "c": np.ones(2, np.complex64), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    dump_pickle(obj, tmp_path / "k.pkl")
    back = load_pickle(tmp_path / "k.pkl")
    trusted = pickle.loads(pickle.dumps(obj, protocol=2))  # what the unrestricted unpickler gives
    for k in ("be", "u", "b", "c", "fortran"):
        assert type(back[k]) is np.ndarray and back[k].dtype == trusted[k].dtype
        assert back[k].flags.f_contiguous == trusted[k].flags.f_contiguous
        np.testing.assert_array_equal(back[k], obj[k])
    assert back["o"].tolist() == [1, "a", None] and back["scalar"] == np.float32(2.5) and back["ints"] == [3]


def test_array_cap_is_checked_before_allocating_and_can_be_raised(tmp_path):
    import time

    dump_pickle(np.zeros((300, 1000), np.float32), tmp_path / "big.pkl")  # 1.14 MB
    with pytest.raises(DataFormatError, match=r"larger than the 1 MB cap"):
        load_pickle(tmp_path / "big.pkl", max_array_mb=1)
    assert load_pickle(tmp_path / "big.pkl", max_array_mb=2).shape == (300, 1000)
    tib = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
           b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85U\x01b\x87R.")
    (tmp_path / "tib.pkl").write_bytes(tib)
    t0 = time.perf_counter()
    with pytest.raises(DataFormatError, match="cap"):
        load_pickle(tmp_path / "tib.pkl")
    assert time.perf_counter() - t0 < 1.0
