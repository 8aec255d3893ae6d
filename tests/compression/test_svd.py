import pytest
import torch

from dlsys.compression.svd import SubspaceSVD, exact_svd, projection_error, truncated_svd


def _matrix(m, n, seed=0, decay=0.97):
    g = torch.Generator().manual_seed(seed)
    U = torch.linalg.qr(torch.randn(m, m, generator=g))[0]
    V = torch.linalg.qr(torch.randn(n, n, generator=g))[0]
    k = min(m, n)
    s = decay ** torch.arange(k, dtype=torch.float32) + 0.05 * torch.rand(k, generator=g)
    s = s.sort(descending=True).values
    return (U[:, :k] * s) @ V[:, :k].T, s


def test_reconstruction_at_full_rank_equals_w():
    W = torch.randn(40, 30, generator=torch.Generator().manual_seed(1))
    svd = exact_svd(W)
    assert torch.allclose(svd.reconstruct(None), W, atol=1e-5)
    assert torch.allclose(svd.reconstruct(10_000), W, atol=1e-5)  # above min(m, n) means full
    assert svd.full_rank == 30


def test_truncation_error_is_the_tail_of_the_spectrum():
    W, s = _matrix(50, 40)
    for d in (1, 5, 20):
        err = torch.linalg.matrix_norm(W - truncated_svd(W, d).reconstruct())
        assert err == pytest.approx(float(s[d:].square().sum().sqrt()), rel=1e-3)


@pytest.mark.parametrize("oversample", [0, 10])
def test_warm_subspace_iteration_matches_exact_truncated_svd(oversample):
    """Track a drifting 256×192 matrix, as in training: the projection error stays at the optimum."""
    g = torch.Generator().manual_seed(3)
    W, _ = _matrix(256, 192, seed=3)
    rank = 20
    tracker = SubspaceSVD(W.shape, rank, oversample=oversample, init=W)
    ratios = []
    for step in range(60):
        W = W + 5e-4 * torch.randn(W.shape, generator=g)  # a small "update" per step
        A, B = tracker(W)
        assert A.shape == (256, rank) and B.shape == (rank, 192)
        exact = truncated_svd(W, rank).reconstruct()
        ratios.append(projection_error(W, A @ B) / projection_error(W, exact))
    assert max(ratios) < 1.01, ratios
    # the projection itself (not only its error) agrees with the exact one
    assert projection_error(exact, A @ B) < 0.02


def test_subspace_iteration_from_random_start_converges():
    W, _ = _matrix(128, 96, seed=4, decay=0.8)
    tracker = SubspaceSVD(W.shape, 8, generator=torch.Generator().manual_seed(0))
    for _ in range(30):
        A, B = tracker(W)
    exact = truncated_svd(W, 8).reconstruct()
    assert projection_error(W, A @ B) == pytest.approx(projection_error(W, exact), rel=1e-3)


def test_cold_random_projection_is_worse_than_exact():
    """Sanity of the test above: one iteration from a random start is clearly not optimal."""
    W, _ = _matrix(128, 96, seed=4, decay=0.97)
    A, B = SubspaceSVD(W.shape, 8, generator=torch.Generator().manual_seed(0))(W)
    exact = truncated_svd(W, 8).reconstruct()
    assert projection_error(W, A @ B) > 1.001 * projection_error(W, exact)
