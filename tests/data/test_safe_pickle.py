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
