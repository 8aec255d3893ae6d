"""mnist_svd_in_loop: fine-tune the baseline with the rank-D projection of W1…W5 in every forward pass
(warm-started subspace iteration per matrix per step), straight-through in the backward pass.

The epoch-time ratio against a plain (dense) epoch of the same model, optimizer and batches is measured
in the same run and recorded.
"""

import copy
import logging
import statistics
import time

from dlsys.compression.factorized import dense_model, projected_model, reconstructed_model, layer_svds
from dlsys.compression.svd import projection_error, truncated_svd
from dlsys.core import load_params, device_from_params, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.models.mlp import load_mlp, save_mlp
from dlsys.models.mnist_task import (MODEL_PATH, TrainConfig, evaluate, load_mnist_tensors, make_loss,
                                     make_optimizer, train_classifier)
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training import TensorBatches, train_epoch

log = logging.getLogger("dlsys.mnist_svd_in_loop")
OUT_MODEL = "data/models/mnist/mlp_svd_in_loop.pt"


def time_dense_epochs(model, data, tc: TrainConfig, epochs: int, seed: int) -> list[float]:
    """Seconds per plain training epoch of a throw-away copy (same batches, optimizer, loss)."""
    import torch

    m = copy.deepcopy(model).train()
    gen = torch.Generator().manual_seed(seed)
    batches = TensorBatches([data.x_train, data.y_train], tc.batch_size, shuffle=True, generator=gen)
    opt = make_optimizer(tc.optimizer, m.parameters(), tc.lr, tc.weight_decay)
    loss_fn = make_loss(tc.label_smoothing, tc.shift_px, torch.Generator().manual_seed(seed))
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        train_epoch(m, opt, batches, loss_fn)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    p = load_params()
    rank = p.int("svd.rank", lo=1)
    n_comp = p.int("mnist.compress.n_compressed", lo=1, hi=5)
    q = p.sub("mnist.svd_in_loop")
    tc = TrainConfig.from_params(q)
    oversample = q.int("oversample", lo=0)
    power_iters = q.int("power_iters", lo=1)
    timing_epochs = q.int("timing_epochs", lo=1)
    device = device_from_params(p)
    seed = p.int("seed", lo=0)
    gen = seed_everything(seed)
    data = load_mnist_tensors(device)
    base = load_mlp(MODEL_PATH, device).eval()

    before = evaluate(reconstructed_model(base, layer_svds(base, n_comp), rank), data.x_test, data.y_test)
    dense_times = time_dense_epochs(base, data, tc, timing_epochs, seed)

    model = projected_model(base, n_comp, rank, oversample=oversample, power_iters=power_iters)
    hist = train_classifier(model, data, tc, gen, desc=f"svd in loop D={rank}")
    loop_times = list(hist.epoch_seconds)
    ratio = statistics.median(loop_times) / statistics.median(dense_times)

    tracked = evaluate(model, data.x_test, data.y_test)  # the forward used in training
    final_w = dense_model(model, base)
    svds = layer_svds(final_w, n_comp)
    compressed = evaluate(reconstructed_model(final_w, svds, rank), data.x_test, data.y_test)
    err_ratio = []
    for layer, svd in zip(model.layers[:n_comp], svds):
        W = layer.weight.detach()
        err_ratio.append(projection_error(W, layer.projected_weight())
                         / projection_error(W, truncated_svd(W, rank).reconstruct()))
    save_mlp(final_w, OUT_MODEL, extra={"rank": rank})

    write_metrics("mnist", "svd_in_loop", {
        "rank": rank, "test_acc": compressed["acc"], "test_acc_tracked_projection": tracked["acc"],
        "test_acc_full_weights": evaluate(final_w, data.x_test, data.y_test)["acc"],
        "test_acc_before": before["acc"], "epochs": hist.epochs_run, "diverged": hist.diverged,
        "epoch_seconds_svd_in_loop": round(statistics.median(loop_times), 3),
        "epoch_seconds_baseline": round(statistics.median(dense_times), 3),
        "epoch_time_ratio": round(ratio, 3), "epoch_time_ratio_goal": 1.3,
        "batch_size": tc.batch_size, "power_iters": power_iters, "oversample": oversample,
        "final_error_ratio_vs_exact_svd": [round(e, 5) for e in err_ratio],
    }, data.source)
    rows = [{"epoch": 0, "test_acc": before["acc"]}]
    rows += [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc", "epoch_seconds")}
             for r in hist.rows]
    with atomic_dir(PLOTS_ROOT / "mnist" / "svd_in_loop") as out:
        write_table_csv(out / "curves.csv", rows)
        fig, ax = new_figure(2)
        ax[0, 0].plot([r["epoch"] for r in rows], [100 * r["test_acc"] for r in rows], "o-")
        ax[0, 0].set(xlabel="epoch (0 = rank-D SVD of the baseline)", ylabel="test accuracy (%)")
        ax[0, 1].bar(["baseline epoch", "SVD in the loop"],
                     [statistics.median(dense_times), statistics.median(loop_times)])
        ax[0, 1].set(ylabel="seconds per epoch")
        fig.suptitle(titled(f"SVD in the loop, D={rank}: {100 * compressed['acc']:.2f}%, "
                            f"epoch time x{ratio:.2f} of baseline", data.source))
        save_figure(fig, out / "curves.png")
    log.info("D=%d: %.4f -> %.4f; epoch time ratio %.2f", rank, before["acc"], compressed["acc"], ratio)


if __name__ == "__main__":
    run_stage(main, "mnist_svd_in_loop")
