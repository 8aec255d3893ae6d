"""Data-aware rank-D compression, in closed form (no gradient steps): reduced-rank regression per layer.

Plain truncated SVD keeps the D directions of largest ‖W‖, whatever the inputs; on MNIST many input
directions (border pixels, dead units) never carry signal, so much of that rank is spent on nothing. Here
layer i's rank-D weight is chosen to reproduce the dense network's pre-activations W_i h_i on calibration
inputs, given the *compressed* network's own inputs ĥ_i (so each layer also corrects the error of the
ones before it):

    min over rank-D W', b'  of  ‖ W_i h_i + b_i − (W' ĥ_i + b') ‖²  (means over the calibration rows)

With C = cov(ĥ) + ridge and W_ls the least-squares map, the solution is W' = U_D U_Dᵀ W_ls, where U_D are
the top D left singular vectors of W_ls C^{1/2}; b' absorbs the mean. Stored as A = U_D (m×D) and
B = U_Dᵀ W_ls (D×n): the same D(m + n) numbers as the plain SVD's factors.

Layers after the compressed ones (the output layer) can be refitted the same way at full rank, i.e. by
least squares from the compressed network's features to the dense network's pre-activations: they stay
dense, so the storage is unchanged, and they absorb what error the compressed layers leave.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from dlsys.compression.svd import clamp_rank


@dataclass
class LowRankLayer:
    A: torch.Tensor     # (m, D)
    B: torch.Tensor     # (D, n)
    bias: torch.Tensor  # (m,)

    @property
    def weight(self) -> torch.Tensor:
        return self.A @ self.B


def calibrated_layers(layers: Sequence[nn.Linear], x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor],
                      rank: int | None, ridge: float, full_rank_tail: int = 0,
                      tail_ridge: float | None = None) -> list[LowRankLayer]:
    """Rank-D factors of each layer in `layers`, fitted on the calibration inputs `x` (rows) of the first.

    The last `full_rank_tail` layers are fitted at full rank (least squares; e.g. the output layer, which is
    not compressed). `act` is applied after every layer (after the last, unused). Computed in float64;
    `ridge` is relative to the mean input variance (keeps C invertible where pixels are constant);
    `tail_ridge` (default `ridge`) is the tail's: its inputs, ReLUs of rank-D maps, are nearly collinear, and
    a tiny ridge lets the least-squares weights grow large and cancel.
    """
    if not 0 <= full_rank_tail <= len(layers):
        raise ValueError(f"full_rank_tail must be in [0, {len(layers)}], got {full_rank_tail}")
    out = []
    with torch.no_grad():
        h = x.double()
        h_hat = h.clone()
        for i, layer in enumerate(layers):
            W, b = layer.weight.double(), layer.bias.double()
            target = h @ W.T
            mu_in, mu_t = h_hat.mean(0), target.mean(0)
            xc, tc = h_hat - mu_in, target - mu_t
            n = len(x)
            C = xc.T @ xc / n
            in_tail = i >= len(layers) - full_rank_tail
            lam = tail_ridge if in_tail and tail_ridge is not None else ridge
            C += lam * C.diagonal().mean().clamp_min(1e-12) * torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
            W_ls = torch.linalg.solve(C, xc.T @ tc / n).T
            L = torch.linalg.cholesky(C)
            U = torch.linalg.svd(W_ls @ L, full_matrices=False)[0]
            d = min(W.shape) if in_tail else clamp_rank(rank, min(W.shape))
            A = U[:, :d]
            B = A.T @ W_ls
            bias = b + mu_t - (A @ (B @ mu_in))
            dt = layer.weight.dtype
            out.append(LowRankLayer(A.to(dt), B.to(dt), bias.to(dt)))
            h = act(target + b)
            h_hat = act(h_hat @ (A @ B).T + bias)
    return out


def calibrated_model(model: nn.Module, layers: Sequence[LowRankLayer]) -> nn.Module:
    """A copy of an MLP (`model.layers`) with its first len(layers) weights and biases replaced."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for dst, low in zip(out.layers, layers):
            dst.weight.copy_(low.weight)
            dst.bias.copy_(low.bias)
    return out
