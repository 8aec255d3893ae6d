"""Real denoise data without test_01's clean reference (as the course's students had it)."""

import json

import numpy as np
import pytest

from dlsys.core.errors import MissingDataError
from dlsys.core.params import Params
from dlsys.data.audio.sets import load_denoise
from dlsys.data.registry import acquire
from dlsys.data.wav import write_wav

REQUIRED = ("train_clean_male.wav", "train_dirty_male.wav", "test_x_01.wav", "test_x_02.wav")


def _real(tmp_path, files):
    ext = tmp_path / "data" / "external" / "denoise"
    for i, f in enumerate(files):
        write_wav(ext / f, np.full(1600, 0.01 * (i + 1), np.float32), 16000)
    return acquire("denoise", Params({"data": {"denoise": {"source": "real", "sr": 16000}}}), 0, root=tmp_path)


def test_without_test_01_s_installs_and_loads_with_no_reference(tmp_path):
    meta = _real(tmp_path, REQUIRED)
    raw = tmp_path / "data" / "raw" / "denoise"
    d = load_denoise(raw)
    assert d.test_01_s is None and len(d.test_01_x) == 1600 and d.source == "real"
    assert "test_01_s" not in meta["durations_s"] and "no test_01_s.wav" in meta["note"]
    assert json.loads((raw / "dataset.json").read_text())["note"] == meta["note"]


def test_with_test_01_s_it_is_installed_and_length_checked(tmp_path):
    _real(tmp_path, (*REQUIRED, "test_s_01.wav"))
    d = load_denoise(tmp_path / "data" / "raw" / "denoise")
    assert d.test_01_s is not None and float(d.test_01_s[0]) == pytest.approx(0.05, abs=1e-4)


def test_a_required_file_is_still_required(tmp_path):
    with pytest.raises(MissingDataError, match="train_dirty_male.wav") as exc:
        _real(tmp_path, ("train_clean_male.wav", "test_x_01.wav", "test_x_02.wav"))
    assert "test_01_s" not in str(exc.value)
