"""Low-rank layers for the MLP: a dense rank-D reconstruction, two trainable factors, and the
straight-through projection used by "SVD in the loop".
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dlsys.compression.svd import SVD, SubspaceSVD, clamp_rank, exact_svd

Projector = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class FactorizedLinear(nn.Module):
    """y = x (U Vᵀ)ᵀ + b with trainable U (m×D) and Vᵀ (D×n); never forms the m×n matrix."""

    def __init__(self, U: torch.Tensor, Vt: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.U = nn.Parameter(U.detach().clone())
        self.Vt = nn.Parameter(Vt.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())

    @classmethod
    def from_svd(cls, svd: SVD, rank: int | None, bias: torch.Tensor) -> "FactorizedLinear":
        """U ← U[:, :D],  Vᵀ ← S[:D, :D] V[:, :D]ᵀ."""
        t = svd.truncate(clamp_rank(rank, svd.full_rank))
        return cls(t.U, t.S[:, None] * t.Vh, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.Vt), self.U, self.bias)


class _StraightThroughLinear(torch.autograd.Function):
    """Forward with W_D = A B (rank D); backward as if W_D were W (dL/dW := dL/dW_D)."""

    @staticmethod
    def forward(ctx, x, weight, bias, A, B):
        ctx.save_for_backward(x, A, B)
        return F.linear(F.linear(x, B), A, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, A, B = ctx.saved_tensors
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        grad_x = (grad_out @ A) @ B if ctx.needs_input_grad[0] else None
        grad_w = g2.T @ x2 if ctx.needs_input_grad[1] else None
        grad_b = g2.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None


class ProjectedLinear(nn.Module):
    """A dense layer whose forward uses the rank-D projection of its weight, recomputed every call.

    The projection is treated as the identity in the backward pass (straight-through), so the optimizer
    updates the full weight W. `projector(W) -> (A, B)` returns factors with A B ≈ the rank-D SVD of W.

    `keep_projected`: every training-mode forward also sets W ← A B (a side effect on the parameter, even
    without an optimizer step), so each step starts from the rank-D matrix the forward used (projected
    gradient descent) and W holds its rank-D part plus at most the last step's update, instead of the
    full-rank tail that the final SVD would cut off. False: W keeps its full rank between steps (the
    course's straight-through).
    """

    def __init__(self, linear: nn.Linear, projector: Projector, keep_projected: bool = False):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().clone())
        self.bias = nn.Parameter(linear.bias.detach().clone())
        self.projector = projector
        self.keep_projected = keep_projected

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        A, B = self.projector(self.weight)
        if self.keep_projected and self.training:
            with torch.no_grad():
                self.weight.copy_(A @ B)
        return _StraightThroughLinear.apply(x, self.weight, self.bias, A, B)

    def projected_weight(self) -> torch.Tensor:
        A, B = self.projector(self.weight)
        return A @ B


class ExactProjector:
    """The peers' method: a full torch.linalg.svd of W at every call (for the benchmark and tests)."""

    def __init__(self, rank: int):
        self.rank = rank

    @torch.no_grad()
    def __call__(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U, S, Vh = torch.linalg.svd(weight.detach(), full_matrices=False)
        d = clamp_rank(self.rank, S.numel())
        return U[:, :d] * S[:d], Vh[:d]


def _linear_layers(model: nn.Module, n_compressed: int) -> Sequence[nn.Linear]:
    layers = list(model.layers)
    if not 1 <= n_compressed <= len(layers):
        raise ValueError(f"n_compressed must be in [1, {len(layers)}], got {n_compressed}")
    return layers[:n_compressed]


def layer_svds(model: nn.Module, n_compressed: int) -> list[SVD]:
    """The SVD, computed once, of each compressed weight W1…W_n (not the last layer, not the biases)."""
    return [exact_svd(layer.weight) for layer in _linear_layers(model, n_compressed)]


def reconstructed_model(model: nn.Module, svds: Sequence[SVD], rank: int | None) -> nn.Module:
    """A copy of `model` with W_i ← U[:, :D] S[:D, :D] V[:, :D]ᵀ for the compressed layers."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for layer, svd in zip(out.layers, svds):
            layer.weight.copy_(svd.reconstruct(clamp_rank(rank, svd.full_rank)))
    return out


def factorized_model(model: nn.Module, svds: Sequence[SVD], rank: int | None) -> nn.Module:
    """A copy of `model` whose compressed layers hold two trainable factors, W = U Vᵀ."""
    out = copy.deepcopy(model)
    for i, svd in enumerate(svds):
        out.layers[i] = FactorizedLinear.from_svd(svd, rank, out.layers[i].bias)
    return out


def projected_model(model: nn.Module, n_compressed: int, rank: int, oversample: int = 0,
                    power_iters: int = 1, method: str = "subspace", keep_projected: bool = False) -> nn.Module:
    """A copy of `model` whose compressed layers use the rank-D projection of W in every forward pass.

    method "subspace": warm-started subspace iteration (started from the exact SVD of the initial W);
    method "exact": a full SVD per call (the slow reference). keep_projected: see `ProjectedLinear`.
    """
    out = copy.deepcopy(model)
    for i, layer in enumerate(_linear_layers(out, n_compressed)):
        if method == "subspace":
            proj: Projector = SubspaceSVD(tuple(layer.weight.shape), rank, oversample=oversample,
                                          power_iters=power_iters, init=layer.weight,
                                          device=layer.weight.device, dtype=layer.weight.dtype)
        elif method == "exact":
            proj = ExactProjector(rank)
        else:
            raise ValueError(f"method must be 'subspace' or 'exact', got {method!r}")
        out.layers[i] = ProjectedLinear(layer, proj, keep_projected=keep_projected)
    return out


def dense_model(projected: nn.Module, template: nn.Module) -> nn.Module:
    """Copy the trained full weights W of a projected model back into a plain model (for saving)."""
    out = copy.deepcopy(template)
    with torch.no_grad():
        for dst, src in zip(out.layers, projected.layers):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    return out


def count_params(shapes: Sequence[tuple[int, int]], rank: int | None = None, n_compressed: int = 0,
                 diagonal: bool = True) -> int:
    """Exact parameter count of an MLP whose first `n_compressed` weights are stored as rank-D factors.

    shapes: (out, in) of every weight. A compressed m×n layer stores U (m×D) + S (D, if `diagonal`)
    + V (n×D), D = min(rank, m, n) (rank None = full); every other weight is m×n; all biases count.
    """
    total = 0
    for i, (m, n) in enumerate(shapes):
        total += m  # bias
        if i < n_compressed:
            d = clamp_rank(rank, min(m, n))
            total += m * d + n * d + (d if diagonal else 0)
        else:
            total += m * n
    return total


def weight_shapes(model: nn.Module) -> list[tuple[int, int]]:
    shapes = []
    for layer in model.layers:
        if isinstance(layer, FactorizedLinear):
            shapes.append((layer.U.shape[0], layer.Vt.shape[1]))
        else:
            shapes.append(tuple(layer.weight.shape))
    return shapes
