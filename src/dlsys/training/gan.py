"""One explicit adversarial loop (the shared `fit` does one optimiser per step; a GAN needs two).

Per batch of B real images: the discriminator sees the B reals (target 1) and B fakes (target 0),
optionally also the B reals paired with a wrong condition (target 0, weighted: the matching-aware
discriminator of Reed et al., 2016, which must check that image and label agree); then the generator is updated to make the discriminator call its fakes real (non-saturating loss),
plus an optional penalty (the imputer's λ·MSE). Batches come from the shared `TensorBatches`.
A NaN/inf loss stops training and is recorded in the returned `EpochLog`, never raised.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dlsys.training.loop import EpochLog

log = logging.getLogger(__name__)

# real(batch) -> (images, D condition or None)
RealFn = Callable[[Sequence[torch.Tensor]], tuple[torch.Tensor, torch.Tensor | None]]
# fake(batch) -> (generated images with grad, D condition or None, generator penalty or None)
FakeFn = Callable[[Sequence[torch.Tensor]], tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]


def train_gan(generator: torch.nn.Module, discriminator: torch.nn.Module, opt_g: torch.optim.Optimizer,
              opt_d: torch.optim.Optimizer, batches, real: RealFn, fake: FakeFn, epochs: int,
              evaluate: Callable[[int], dict] | None = None, desc: str = "gan",
              mismatched: RealFn | None = None, mismatch_weight: float = 0.0, eval_every: int = 1) -> EpochLog:
    """Alternate D and G steps for `epochs`. Each row: d_loss, g_loss (adversarial part), g_penalty,
    d_acc_real / d_acc_fake (the discriminator's accuracy on the reals and fakes of its own steps),
    d_acc_mismatch when `mismatched(batch)` (reals with a wrong condition) is given with a weight > 0,
    plus whatever `evaluate(epoch)` returns (every `eval_every` epochs and after the last, in eval mode,
    without gradients). Sums stay on the device (no host sync per step); a non-finite loss is found at
    the end of its epoch and recorded as divergence."""
    use_mismatch = mismatched is not None and mismatch_weight > 0
    history = EpochLog()
    t0 = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, leave=False, mininterval=1.0)
    for epoch in bar:
        te = time.perf_counter()
        generator.train()
        discriminator.train()
        sums = None  # d_loss, g_loss, g_penalty, real / fake / mismatch correct (on the device)
        count = 0
        for batch in batches:
            x_real, c_real = real(batch)
            x_fake, c_fake, penalty = fake(batch)
            n = len(x_real)

            opt_d.zero_grad(set_to_none=True)
            logit_real = discriminator(x_real, c_real)
            logit_fake = discriminator(x_fake.detach(), c_fake)
            d_sum = (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                     + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
            if use_mismatch:
                logit_wrong = discriminator(*mismatched(batch))
                d_sum = d_sum + mismatch_weight * F.binary_cross_entropy_with_logits(
                    logit_wrong, torch.zeros_like(logit_wrong))
            d_loss = 0.5 * d_sum
            d_loss.backward()
            opt_d.step()

            opt_g.zero_grad(set_to_none=True)
            logit_g = discriminator(x_fake, c_fake)
            g_adv = F.binary_cross_entropy_with_logits(logit_g, torch.ones_like(logit_g))
            g_loss = g_adv if penalty is None else g_adv + penalty
            g_loss.backward()
            opt_g.step()

            with torch.no_grad():
                pen = penalty.detach() if penalty is not None else torch.zeros_like(g_adv)
                step = torch.stack([d_loss.detach() * n, g_adv.detach() * n, pen * n,
                                    (logit_real > 0).sum().to(d_loss.dtype),
                                    (logit_fake < 0).sum().to(d_loss.dtype),
                                    (logit_wrong < 0).sum().to(d_loss.dtype) if use_mismatch
                                    else torch.zeros_like(d_loss)]).double()
                sums = step if sums is None else sums + step
            count += n
        row: dict = {"epoch": epoch}
        s = (sums / max(count, 1)).tolist() if sums is not None else [math.nan] * 6
        if not all(math.isfinite(v) for v in s[:3]):
            history.diverged, history.diverged_at = True, epoch
            row.update(d_loss=s[0], g_loss=s[1], g_penalty=s[2])
            history.rows.append(row)
            history.epoch_seconds.append(time.perf_counter() - te)
            log.warning("%s diverged at epoch %d (non-finite loss); recorded, stopping this run", desc, epoch)
            break
        row.update(d_loss=s[0], g_loss=s[1], g_penalty=s[2], d_acc_real=s[3], d_acc_fake=s[4])
        if use_mismatch:
            row["d_acc_mismatch"] = s[5]
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            generator.eval()
            discriminator.eval()
            with torch.no_grad():
                row.update(evaluate(epoch))
        history.rows.append(row)
        history.epoch_seconds.append(time.perf_counter() - te)
        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)})
    bar.close()
    history.seconds = time.perf_counter() - t0
    if history.rows:
        history.best = dict(history.rows[-1])
    return history
