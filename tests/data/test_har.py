from pathlib import Path

import numpy as np
import pytest

from dlsys.core.errors import DataFormatError
from dlsys.core.params import Params
from dlsys.data.har import ACTIVITIES, RAW_FILE, HarRecords, generate, read_raw, subject_split, window


def _records(runs):
    """runs: list of (user, activity_index, n_samples)."""
    u, a, t, x = [], [], [], []
    for user, act, n in runs:
        u += [user] * n
        a += [act] * n
        t += list(range(n))
        x += [[len(x) + i, 0, 0] for i in range(n)]
    return HarRecords(np.array(u), np.array(a), np.array(t), np.array(x, np.float32))


def test_window_counts_within_runs():
    # run lengths 200, 79, 120 with length 80 / step 40: 4, 0 and 2 windows.
    rec = _records([(1, 0, 200), (1, 1, 79), (2, 0, 120)])
    X, y, s = window(rec, 80, 40)
    assert X.shape == (6, 80, 3)
    assert y.tolist() == [0, 0, 0, 0, 0, 0]
    assert s.tolist() == [1, 1, 1, 1, 2, 2]
    # windows start every 40 samples and never cross a run boundary
    assert X[:, 0, 0].tolist() == [0, 40, 80, 120, 279, 319]
    assert (np.diff(X[:, :, 0], axis=1) == 1).all()


def test_same_activity_different_user_is_a_new_run():
    rec = _records([(1, 2, 100), (2, 2, 100)])
    X, y, s = window(rec, 80, 40)
    assert len(X) == 2 and s.tolist() == [1, 2]


def test_subject_split_is_disjoint():
    subjects = np.array([1, 5, 28, 29, 30, 36, 2])
    train, test = subject_split(subjects, 29)
    assert set(subjects[train]) == {1, 2, 5, 28}
    assert set(subjects[test]) == {29, 30, 36}
    assert not (train & test).any()


def test_reader_parses_wisdm_format_and_skips_malformed(tmp_path: Path):
    f = tmp_path / RAW_FILE
    f.write_text("33,Jogging,49105962326000,-0.6946377,12.680544,0.50395286;\n"
                 "33,Jogging,49106062271000,5.012288,11.264028,0.95342433;33,Sitting,1,0.1,9.8,0.2;\n"
                 "11,Walking,1867172313000,4.4,4.4,;\n"
                 "\n"
                 "7,Upstairs,5,1e-1,-2.0,3.5;")
    rec = read_raw(f)
    assert rec.user.tolist() == [33, 33, 33, 7]
    assert [ACTIVITIES[a] for a in rec.activity] == ["Jogging", "Jogging", "Sitting", "Upstairs"]
    np.testing.assert_allclose(rec.xyz[3], [0.1, -2.0, 3.5])
    assert rec.skipped == 1


def test_reader_rejects_a_file_without_records(tmp_path: Path):
    f = tmp_path / RAW_FILE
    f.write_text("not,a,wisdm,file\n")
    with pytest.raises(DataFormatError, match=RAW_FILE):
        read_raw(f)


def test_synthetic_generator_writes_raw_format_deterministically(tmp_path: Path):
    params = Params({"n_users": 3, "seconds_per_user": 60, "sample_rate": 20, "segment_seconds": 8})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    summary = generate(tmp_path / "a", params, seed=4)
    generate(tmp_path / "b", params, seed=4)
    assert (tmp_path / "a" / RAW_FILE).read_text() == (tmp_path / "b" / RAW_FILE).read_text()
    rec = read_raw(tmp_path / "a" / RAW_FILE)
    assert rec.skipped == 0 and len(rec.user) == summary["records"]
    assert set(rec.user.tolist()) == {1, 2, 3}
    assert set(rec.activity.tolist()) == set(range(6))  # every activity appears for every user
    # static postures are near 1 g, jogging varies far more than standing
    mag = np.linalg.norm(rec.xyz, axis=1)
    jog, stand = rec.activity == 1, rec.activity == 5
    assert abs(np.median(mag[stand]) - 9.81) < 1.5
    assert mag[jog].std() > 3 * mag[stand].std()
