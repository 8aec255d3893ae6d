import logging

import numpy as np
import pytest
import soundfile as sf

from dlsys.core.errors import DataFormatError, MissingDataError
from dlsys.data.wav import quantize16, read_wav, write_wav


def test_round_trip_pcm16_exact(tmp_path):
    x = quantize16(np.random.default_rng(0).uniform(-0.9, 0.9, 1600))
    write_wav(tmp_path / "a.wav", x, 16000)
    y = read_wav(tmp_path / "a.wav", 16000)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) == 1600
    np.testing.assert_array_equal(x, y)
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"


def test_stereo_downmix_and_resample_with_warning(tmp_path, caplog):
    t = np.arange(8000) / 8000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "s.wav", np.stack([tone, tone], 1), 8000)
    with caplog.at_level(logging.WARNING):
        y = read_wav(tmp_path / "s.wav", 16000)
    assert len(y) == 16000 and "resampling" in caplog.text
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 440) < 2


def test_errors_name_the_file(tmp_path):
    with pytest.raises(MissingDataError, match="nope.wav"):
        read_wav(tmp_path / "nope.wav")
    (tmp_path / "bad.wav").write_bytes(b"not a wav at all")
    with pytest.raises(DataFormatError, match="bad.wav"):
        read_wav(tmp_path / "bad.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(DataFormatError, match="empty.wav.*empty"):
        read_wav(tmp_path / "empty.wav")
    sf.write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(DataFormatError, match="nan.wav.*NaN"):
        read_wav(tmp_path / "nan.wav")


def test_write_refuses_clipping_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_wav(tmp_path / "c.wav", np.array([0.0, 1.5]), 16000)
    assert list(tmp_path.iterdir()) == []
