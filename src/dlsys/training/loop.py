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


class EpochTensors:
    """Mini-batches as TensorBatches, over tensors that `make()` builds anew before every epoch (fresh
    augmented data, say); the number of rows must stay the same from epoch to epoch."""

    def __init__(self, make: Callable[[], Sequence[torch.Tensor]], batch_size: int,
                 generator: torch.Generator | None = None):
        self.make = make
        self.batch_size = batch_size
        self.generator = generator
        self._ready: TensorBatches | None = self._batches()  # now: its length is the epoch's, a bad make fails early
        self._len, self._rows = len(self._ready), self._ready.n

    def _batches(self) -> TensorBatches:
        return TensorBatches(self.make(), self.batch_size, generator=self.generator)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        batches = self._ready if self._ready is not None else self._batches()
        self._ready = None
        if batches.n != self._rows:
            raise ValueError(f"EpochTensors: make() gave {batches.n} rows, the first epoch {self._rows}")
        yield from batches


@dataclass
class EpochLog:
    """What `fit` returns: per-epoch rows (results only), the best row, divergence, and timings.

    Timings live beside the rows, not in them, so curves written from the rows are byte-reproducible.
    """

    rows: list[dict] = field(default_factory=list)
    best: dict | None = None
    diverged: bool = False
    diverged_at: int | None = None
    seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.rows)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def summary(self) -> dict:
        """Divergence facts for a metrics file: whether, and at which epoch."""
        return {"epochs": self.epochs_run, "diverged": self.diverged, "diverged_at_epoch": self.diverged_at}


def _split_loss(out) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A loss function returns a scalar, or a dict with the scalar under "loss" plus named terms to log."""
    if isinstance(out, dict):
        terms = {k: v.detach() for k, v in out.items() if k != "loss"}
        return out["loss"], terms
    return out, {}


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches, loss_fn: LossFn,
                grad_clip: float | None = None, after_step: Callable[[], None] | None = None) -> dict[str, float]:
    """One pass; returns the sample-weighted mean loss (and of each named term) over the epoch.

    Sums stay on the device and are read once at the end: no host sync per step. A non-finite loss
    makes the epoch's mean non-finite, which `fit` records as divergence.
    """
    model.train()
    totals: dict[str, torch.Tensor] = {}
    count = 0
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss, terms = _split_loss(loss_fn(model, batch))
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step()
        n = len(batch[0])
        for name, value in (("loss", loss.detach()), *terms.items()):
            contribution = value.double() * n
            totals[name] = totals[name] + contribution if name in totals else contribution
        count += n
    return {name: float(total) / max(count, 1) for name, total in totals.items()}


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches, loss_fn: LossFn, epochs: int,
        evaluate: Callable[[torch.nn.Module, int], dict] | None = None, scheduler=None,
        select: str | None = None, mode: str = "max", desc: str = "train",
        grad_clip: float | None = None, after_step: Callable[[], None] | None = None,
        restore_best: bool = True, eval_every: int = 1) -> EpochLog:
    """Train for `epochs`; every `eval_every` epochs (and after the last), `evaluate(model, epoch)` adds
    metrics to the epoch's row.

    With `select`, the state with the best value of that metric is restored at the end (selection on
    whatever data `evaluate` uses: pass validation data, never test data). A non-finite training loss
    stops training and is recorded (`diverged`), never raised.
    """
    if eval_every < 1:
        raise ValueError("eval_every must be >= 1")
    history = EpochLog()
    best_value = -math.inf if mode == "max" else math.inf
    best_state = None
    t0 = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, leave=False, mininterval=1.0)
    for epoch in bar:
        te = time.perf_counter()
        losses = train_epoch(model, optimizer, batches, loss_fn, grad_clip=grad_clip, after_step=after_step)
        row: dict = {"epoch": epoch, **{("train_loss" if k == "loss" else f"train_{k}"): v
                                         for k, v in losses.items()}}
        if not all(math.isfinite(v) for v in losses.values()):
            history.diverged, history.diverged_at = True, epoch
            history.rows.append(row)
            history.epoch_seconds.append(time.perf_counter() - te)
            log.warning("%s diverged at epoch %d (train loss %s); recorded, stopping this run",
                        desc, epoch, row.get("train_loss"))
            break
        if scheduler is not None:
            scheduler.step()
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model, epoch))
        history.rows.append(row)
        history.epoch_seconds.append(time.perf_counter() - te)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)})
        if select is not None and select in row and math.isfinite(row[select]):
            value = row[select]
            if value > best_value if mode == "max" else value < best_value:
                best_value, history.best = value, dict(row)
                best_state = copy.deepcopy(model.state_dict())
    bar.close()
    history.seconds = time.perf_counter() - t0
    if select is not None and best_state is not None and restore_best:
        model.load_state_dict(best_state)
    if history.best is None and history.rows:
        history.best = dict(history.rows[-1])
    return history
