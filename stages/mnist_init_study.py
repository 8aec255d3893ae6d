"""mnist_init_study <optimizer>: 5×512 FC net, five activation/init setups, one optimizer (sgd | adam).

One DVC matrix entry per optimizer; each writes one plot overlaying the five training-loss curves.
A run whose loss becomes NaN/inf is recorded as diverged (metrics and plot), never a crash.
"""

import argparse
import logging
import math

import torch
from torch.nn import functional as F

from dlsys.core import load_params, device_from_params, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.models.mlp import MLP, MLPConfig
from dlsys.models.mnist_task import TrainConfig, load_mnist_tensors, train_classifier
from dlsys.plots import new_figure, save_figure, titled

log = logging.getLogger("dlsys.mnist_init_study")
# (name, activation, init) — the lecture's five setups
SETUPS = [("sigmoid_normal", "sigmoid", "normal"), ("sigmoid_xavier", "sigmoid", "xavier"),
          ("relu_normal", "relu", "normal"), ("relu_xavier", "relu", "xavier"), ("relu_he", "relu", "he")]


def windowed(losses: list[float], every: int) -> list[tuple[int, float]]:
    """Mean loss over consecutive windows of `every` iterations: (last iteration, mean).

    At the first non-finite loss the curve ends: the finite part of that window, then (iteration, NaN).
    """
    out = []
    for lo in range(0, len(losses), every):
        chunk = losses[lo:lo + every]
        bad = next((i for i, v in enumerate(chunk) if not math.isfinite(v)), None)
        if bad is None:
            out.append((lo + len(chunk), sum(chunk) / len(chunk)))
            continue
        if bad:
            out.append((lo + bad, sum(chunk[:bad]) / bad))
        out.append((lo + bad + 1, float("nan")))
        break
    return out


def run_setup(name, activation, init, hidden, std, tc, data, seed):
    gen = seed_everything(seed)
    model = MLP(MLPConfig(hidden=hidden, activation=activation, init=init, init_std=std), generator=gen)
    model = model.to(data.x_train.device)
    losses: list[torch.Tensor] = []

    def loss_fn(m, batch):
        x, y = batch
        loss = F.cross_entropy(m(x), y)
        losses.append(loss.detach())
        return loss

    hist = train_classifier(model, data, tc, gen, desc=f"{tc.optimizer} {name}", loss_fn=loss_fn)
    per_iter = torch.stack(losses).double().cpu().tolist() if losses else []
    bad = [i for i, v in enumerate(per_iter) if not math.isfinite(v)]
    finite_rows = [r for r in hist.rows if "test_acc" in r]
    return {
        "diverged": hist.diverged, "diverged_at_iteration": (bad[0] + 1) if bad else None,
        "iterations": len(per_iter),
        "final_train_loss": hist.rows[-1]["train_loss"],
        "test_acc": finite_rows[-1]["test_acc"] if finite_rows else None,
    }, per_iter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("optimizer", choices=["sgd", "adam"])
    opt_name = ap.parse_args().optimizer
    p = load_params()
    q = p.sub("mnist.init_study")
    hidden = q.list("hidden", item_type=int, min_len=1, lo=1)
    std = q.float("normal_std", lo=0.0)
    every = q.int("log_every", lo=1)
    tc = TrainConfig(optimizer=opt_name, lr=q.float(f"{opt_name}.lr", lo=0.0), epochs=q.int("epochs", lo=1),
                     batch_size=q.int("batch_size", lo=1))
    device = device_from_params(p)
    seed = p.int("seed", lo=0)
    seed_everything(seed)
    data = load_mnist_tensors(device)

    results, curves = {}, {}
    for name, act, init in SETUPS:
        results[name], per_iter = run_setup(name, act, init, hidden, std, tc, data, seed)
        curves[name] = windowed(per_iter, every)
        log.info("%s/%s: %s", opt_name, name, results[name])
    write_metrics("mnist", f"init_study_{opt_name}", {"optimizer": opt_name, "lr": tc.lr, **results},
                  data.source)

    n_points = max(len(c) for c in curves.values())
    rows = []
    for i in range(n_points):
        it = next(c[i][0] for c in curves.values() if i < len(c))
        rows.append({"iteration": it, **{n: (c[i][1] if i < len(c) else None) for n, c in curves.items()}})
    with atomic_dir(PLOTS_ROOT / "mnist" / f"init_study_{opt_name}") as out:
        write_table_csv(out / "train_loss.csv", rows)
        fig, ax = new_figure(size=(6.0, 4.0))
        a = ax[0, 0]
        for name, c in curves.items():
            finite = [(x, y) for x, y in c if math.isfinite(y)]
            label = name.replace("_", " + ")
            if results[name]["diverged"]:
                label += f" (diverged @ it {results[name]['diverged_at_iteration']})"
            line = a.plot([x for x, _ in finite], [y for _, y in finite], label=label)[0]
            if results[name]["diverged"]:
                x_end = results[name]["diverged_at_iteration"]
                y_end = finite[-1][1] if finite else 2.3
                a.plot([x_end], [y_end], "x", ms=10, mew=2, color=line.get_color())
        a.set(xlabel="iteration", ylabel=f"training loss (mean over {every} its)", yscale="log")
        a.legend(fontsize=7)
        a.set_title(titled(f"5x{hidden[0]} net, {opt_name} lr={tc.lr:g}: init and activation", data.source))
        save_figure(fig, out / "train_loss.png")


if __name__ == "__main__":
    run_stage(main, "mnist_init_study")
