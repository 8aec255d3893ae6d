import numpy as np
import pytest

from dlsys.features.pairs import PairBatches, all_pairs, speaker_pairs

N_SPK, PER = 6, 10


def _speaker(row):
    return row // PER


@pytest.mark.parametrize("L", [5, 10, 45, 60])
def test_counts_balance_and_ownership(L):
    rng = np.random.default_rng(0)
    for s in range(N_SPK):
        p = speaker_pairs(s, N_SPK, PER, L, rng)
        assert len(p) == 2 * L
        assert p.label.sum() == L
        pos, neg = p.label == 1, p.label == 0
        # positives: both utterances of this speaker, never the same utterance
        assert (_speaker(p.first[pos]) == s).all() and (_speaker(p.second[pos]) == s).all()
        assert (p.first[pos] != p.second[pos]).all()
        # negatives: one of ours with another speaker's utterance
        assert (_speaker(p.first[neg]) == s).all()
        assert (_speaker(p.second[neg]) != s).all()
        assert p.second.max() < N_SPK * PER and p.second.min() >= 0


def test_no_repeats_when_L_fits():
    rng = np.random.default_rng(1)
    p = speaker_pairs(2, N_SPK, PER, 45, rng)
    pos = {(a, b) for a, b in zip(p.first[:45], p.second[:45])}
    assert len(pos) == 45  # all C(10,2) pairs, each once
    own = speaker_pairs(2, N_SPK, PER, 10, rng).first[10:]
    assert sorted(own) == list(range(20, 30))  # each utterance once when L <= 10


def test_negatives_cover_all_other_speakers():
    rng = np.random.default_rng(2)
    p = speaker_pairs(0, N_SPK, PER, 2000, rng)
    others = set(_speaker(p.second[p.label == 0]).tolist())
    assert others == set(range(1, N_SPK))


def test_determinism_and_fresh_pairs_each_epoch():
    a = [tuple(t.numpy().tolist() for t in b) for b in PairBatches(N_SPK, PER, 8, seed=3)]
    b = [tuple(t.numpy().tolist() for t in b) for b in PairBatches(N_SPK, PER, 8, seed=3)]
    assert a == b
    batches = PairBatches(N_SPK, PER, 8, seed=3)
    epoch1 = [t[0].tolist() + t[1].tolist() for t in batches]
    epoch2 = [t[0].tolist() + t[1].tolist() for t in batches]
    assert epoch1 != epoch2
    assert len(epoch1) == N_SPK  # one minibatch per speaker


def test_all_pairs_is_fixed_under_seed():
    p1 = all_pairs(N_SPK, PER, 7, np.random.default_rng(5))
    p2 = all_pairs(N_SPK, PER, 7, np.random.default_rng(5))
    assert len(p1) == N_SPK * 14
    np.testing.assert_array_equal(p1.second, p2.second)
