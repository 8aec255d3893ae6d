"""mnist_compress_svd: SVD once per W1…W5 of the baseline; test accuracy and exact parameter count per D."""

import logging

from dlsys.compression.factorized import count_params, layer_svds, reconstructed_model, weight_shapes
from dlsys.core import load_params, device_from_params, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.errors import UserError
from dlsys.core.stage import run_stage
from dlsys.models.mlp import load_mlp
from dlsys.models.mnist_task import MODEL_PATH, evaluate, load_mnist_tensors
from dlsys.plots import new_figure, save_figure, titled

log = logging.getLogger("dlsys.mnist_compress_svd")


def rank_list(p) -> list:
    """svd.ranks: positive integers and/or "full" (D = min(m, n))."""
    return [None if r == "full" else r for r in p.list("svd.ranks", item_type=int, min_len=1, lo=1,
                                                       allow=["full"])]


def main() -> None:
    p = load_params()
    ranks = rank_list(p)
    n_comp = p.int("mnist.compress.n_compressed", lo=1)
    device = device_from_params(p)
    seed_everything(p.int("seed", lo=0))
    data = load_mnist_tensors(device)
    model = load_mlp(MODEL_PATH, device).eval()
    shapes = weight_shapes(model)
    if n_comp >= len(shapes):
        raise UserError(f"params.yaml: 'mnist.compress.n_compressed' must be < {len(shapes)} "
                        f"(the output layer stays dense), got {n_comp}")

    base_acc = evaluate(model, data.x_test, data.y_test)["acc"]
    base_params = count_params(shapes)
    svds = layer_svds(model, n_comp)  # once per matrix
    rows = []
    for r in ranks:
        acc = evaluate(reconstructed_model(model, svds, r), data.x_test, data.y_test)["acc"]
        n = count_params(shapes, r, n_comp, diagonal=True)
        d = "full" if r is None else r
        rows.append({"rank": d, "D_per_layer": [min(s.full_rank, r or s.full_rank) for s in svds],
                     "test_acc": acc, "n_params": n, "param_ratio": n / base_params})
        log.info("D=%s: test acc %.4f, %d params (%.3f of baseline)", d, acc, n, n / base_params)

    write_metrics("mnist", "compress_svd", {
        "baseline_test_acc": base_acc, "baseline_n_params": base_params,
        "compressed_layers": n_comp, "sweep": rows,
    }, data.source)
    with atomic_dir(PLOTS_ROOT / "mnist" / "compress_svd") as out:
        xs = [max(r["D_per_layer"]) for r in rows]
        write_table_csv(out / "accuracy_vs_rank.csv",
                        [{"D": x, "test_acc": r["test_acc"], "baseline_test_acc": base_acc,
                          "n_params": r["n_params"], "param_ratio": r["param_ratio"]} for x, r in zip(xs, rows)])
        fig, ax = new_figure()
        a = ax[0, 0]
        a.plot(xs, [100 * r["test_acc"] for r in rows], "o-", label="rank-D SVD of W1…W5")
        a.axhline(100 * base_acc, color="k", ls="--", label=f"baseline {100 * base_acc:.2f}%")
        for x, r in zip(xs, rows):
            a.annotate(f"{r['param_ratio']:.2f}x", (x, 100 * r["test_acc"]), textcoords="offset points",
                       xytext=(0, -12), ha="center", fontsize=7)
        a.set(xscale="log", xlabel="D (rank kept per layer; labels: params vs baseline)",
              ylabel="test accuracy (%)")
        a.legend()
        a.set_title(titled("SVD compression sweep", data.source))
        save_figure(fig, out / "accuracy_vs_rank.png")


if __name__ == "__main__":
    run_stage(main, "mnist_compress_svd")
