"""mnist_svd_finetune: W1…W5 as two trainable factors W = U Vᵀ (D = svd.rank), initialised from the SVD,
checked against the sweep's rank-D network, then fine-tuned with a smaller learning rate."""

import logging

import torch

from dlsys.compression.factorized import (count_params, factorized_model, layer_svds, reconstructed_model,
                                          weight_shapes)
from dlsys.core import load_params, device_from_params, save_torch, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.models.mlp import load_mlp
from dlsys.models.mnist_task import (MODEL_PATH, TrainConfig, evaluate, load_mnist_tensors, predict_logits,
                                     train_classifier)
from dlsys.plots import new_figure, save_figure, titled

log = logging.getLogger("dlsys.mnist_svd_finetune")
OUT_MODEL = "data/models/mnist/mlp_svd_finetune.pt"


def main() -> None:
    p = load_params()
    rank = p.int("svd.rank", lo=1)
    n_comp = p.int("mnist.compress.n_compressed", lo=1, hi=5)
    tc = TrainConfig.from_params(p.sub("mnist.finetune"))
    device = device_from_params(p)
    gen = seed_everything(p.int("seed", lo=0))
    data = load_mnist_tensors(device)
    base = load_mlp(MODEL_PATH, device).eval()
    shapes = weight_shapes(base)

    svds = layer_svds(base, n_comp)
    sweep_logits = predict_logits(reconstructed_model(base, svds, rank), data.x_test)
    model = factorized_model(base, svds, rank)
    fact_logits = predict_logits(model, data.x_test)
    sweep_correct = int((sweep_logits.argmax(1) == data.y_test).sum())
    fact_correct = int((fact_logits.argmax(1) == data.y_test).sum())
    logit_diff = float((sweep_logits - fact_logits).abs().max())
    # The factorization is the sweep's rank-D network written as two factors: same predictions.
    assert fact_correct == sweep_correct, (fact_correct, sweep_correct, logit_diff)
    before = evaluate(model, data.x_test, data.y_test)

    hist = train_classifier(model, data, tc, gen, desc=f"svd finetune D={rank}")
    after = evaluate(model, data.x_test, data.y_test)
    n_params = count_params(shapes, rank, n_comp, diagonal=False)
    base_params = count_params(shapes)
    save_torch({"rank": rank, "n_compressed": n_comp,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, OUT_MODEL)
    write_metrics("mnist", "svd_finetune", {
        "rank": rank, "test_acc_before": before["acc"], "sweep_test_acc_at_rank": sweep_correct / len(data.y_test),
        "max_abs_logit_diff_vs_sweep": logit_diff, "test_acc": after["acc"], "test_loss": after["loss"],
        "n_params": n_params, "baseline_n_params": base_params, "param_ratio": n_params / base_params,
        "epochs": hist.epochs_run, "diverged": hist.diverged, "train_seconds": round(hist.seconds, 2),
    }, data.source)
    rows = [{"epoch": 0, "test_acc": before["acc"], "test_loss": before["loss"]}]
    rows += [{k: r.get(k) for k in ("epoch", "train_loss", "test_loss", "test_acc")} for r in hist.rows]
    with atomic_dir(PLOTS_ROOT / "mnist" / "svd_finetune") as out:
        write_table_csv(out / "curves.csv", rows)
        fig, ax = new_figure()
        ax[0, 0].plot([r["epoch"] for r in rows], [100 * r["test_acc"] for r in rows], "o-")
        ax[0, 0].set(xlabel="epoch (0 = SVD initialisation)", ylabel="test accuracy (%)")
        ax[0, 0].set_title(titled(f"factorized fine-tune, D={rank}, {n_params:,} params", data.source))
        save_figure(fig, out / "curves.png")
    log.info("D=%d: %.4f before, %.4f after fine-tuning (%d params)", rank, before["acc"], after["acc"], n_params)


if __name__ == "__main__":
    run_stage(main, "mnist_svd_finetune")
