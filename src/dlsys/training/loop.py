"""One explicit training loop, shared by every stage.

Data stays as tensors on the device; `TensorBatches` shuffles with a seeded generator and slices, so
there is no per-sample Python work and no DataLoader in the hot path. `fit` runs epochs, calls the
stage's evaluation, keeps the best state, and records divergence (a NaN/inf loss) instead of crashing.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

LossFn = Callable[[torch.nn.Module, Sequence[torch.Tensor]], torch.Tensor]


class TensorBatches:
    """Mini-batches over equally long tensors, reshuffled every epoch by a seeded generator."""

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool = True,
                 generator: torch.Generator | None = None, drop_last: bool = False):
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError("all tensors must have the same first dimension")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.tensors = list(tensors)
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        device = self.tensors[0].device
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator).to(device)
        else:
            order = None
        for b in range(len(self)):
            lo = b * self.batch_size
            hi = min(lo + self.batch_size, self.n)
            if order is None:
                yield tuple(t[lo:hi] for t in self.tensors)
            else:
                idx = order[lo:hi]
                yield tuple(t[idx] for t in self.tensors)


@dataclass
class EpochLog:
    """What `fit` returns: per-epoch rows, the best row, and whether training diverged."""

    rows: list[dict] = field(default_factory=list)
    best: dict | None = None
    diverged: bool = False
    diverged_at: int | None = None
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.rows)


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches, loss_fn: LossFn,
                grad_clip: float | None = None, after_step: Callable[[], None] | None = None) -> float:
    """One pass; returns the mean loss, or NaN/inf as soon as a batch's loss is not finite."""
    model.train()
    total, count = torch.zeros((), dtype=torch.float64), 0
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            return float(loss.detach())
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step()
        n = len(batch[0])
        total += loss.detach().double().cpu() * n
        count += n
    return float(total / max(count, 1))


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches, loss_fn: LossFn, epochs: int,
        evaluate: Callable[[torch.nn.Module], dict] | None = None, scheduler=None,
        select: str | None = None, mode: str = "max", desc: str = "train",
        grad_clip: float | None = None, after_step: Callable[[], None] | None = None,
        restore_best: bool = True) -> EpochLog:
    """Train for `epochs`; after each, `evaluate(model)` adds metrics to the epoch's row.

    With `select`, the state with the best value of that metric is restored at the end (early-stopping
    selection). A non-finite training loss stops training and is recorded, never raised.
    """
    history = EpochLog()
    best_value = -math.inf if mode == "max" else math.inf
    best_state = None
    t0 = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, leave=False, mininterval=1.0)
    for epoch in bar:
        te = time.perf_counter()
        loss = train_epoch(model, optimizer, batches, loss_fn, grad_clip=grad_clip, after_step=after_step)
        row: dict = {"epoch": epoch, "train_loss": loss, "epoch_seconds": time.perf_counter() - te}
        if not math.isfinite(loss):
            history.diverged, history.diverged_at = True, epoch
            row["train_loss"] = float("nan")
            history.rows.append(row)
            log.warning("%s diverged at epoch %d (loss %s); recorded, stopping this run", desc, epoch, loss)
            break
        if scheduler is not None:
            scheduler.step()
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model))
        history.rows.append(row)
        shown = {k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "epoch_seconds")
                 and isinstance(v, float)}
        bar.set_postfix(shown)
        if select is not None:
            value = row[select]
            better = value > best_value if mode == "max" else value < best_value
            if better:
                best_value, history.best = value, dict(row)
                best_state = copy.deepcopy(model.state_dict())
    bar.close()
    history.seconds = time.perf_counter() - t0
    if select is not None and best_state is not None and restore_best:
        model.load_state_dict(best_state)
    if history.best is None and history.rows:
        history.best = dict(history.rows[-1])
    return history
