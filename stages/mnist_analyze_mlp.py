"""mnist_analyze_mlp: what the baseline's layers do, on `n_samples` test images.

* top-k grids: per class (highest softmax probability) and per random penultimate unit (images assigned
  to the unit, among the chosen ones, with their largest activation; fewer winners leave empty cells);
* PCA and t-SNE 2-D scatters of the pixels and of every layer's output, with a separability number per
  layer (leave-one-out k-NN accuracy and silhouette in each 2-D embedding, k-NN in the full space).
"""

import logging
import time

import numpy as np
import torch

from dlsys.core import load_params, device_from_params, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.evaluation.embedding import assigned_top_k, knn_accuracy, pca_2d, silhouette, top_k_per_column, tsne_2d
from dlsys.models.mlp import load_mlp
from dlsys.models.mnist_task import MODEL_PATH, load_mnist_tensors
from dlsys.plots import image_grid, new_figure, save_figure, titled

log = logging.getLogger("dlsys.mnist_analyze_mlp")


def grid_cells(images: np.ndarray, rows: list[list[int]], k: int) -> list:
    cells = []
    for idx in rows:
        cells += [images[i] for i in idx] + [None] * (k - len(idx))
    return cells


def scatter_panel(ax, emb: np.ndarray, labels: np.ndarray, title: str) -> None:
    ax.scatter(emb[:, 0], emb[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7, vmin=0, vmax=9)
    for c in np.unique(labels):
        m = emb[labels == c].mean(axis=0)
        ax.text(m[0], m[1], str(c), fontsize=12, weight="bold", ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", alpha=0.7, lw=0))
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    p = load_params()
    q = p.sub("mnist.analyze")
    n, n_units, k = q.int("n_samples", lo=10), q.int("n_units", lo=1), q.int("top_k", lo=1)
    pca_dims, perplexity, knn_k = q.int("pca_dims", lo=0), q.float("tsne_perplexity", lo=1.0), q.int("knn_k", lo=1)
    device = device_from_params(p)
    seed = p.int("seed", lo=0)
    seed_everything(seed)
    data = load_mnist_tensors(device)
    model = load_mlp(MODEL_PATH, device).eval()

    x, y = data.x_test[:n], data.y_test[:n]
    with torch.no_grad():
        outs = [h.cpu().numpy() for h in model.hidden_outputs(x)]
    labels = y.cpu().numpy()
    images = x.reshape(len(x), 28, 28).cpu().numpy()
    probs = torch.softmax(torch.as_tensor(outs[-1]), dim=1).numpy()
    penult = outs[-2]
    units = np.sort(np.random.default_rng(seed).choice(penult.shape[1], size=n_units, replace=False))
    unit_rows = assigned_top_k(penult[:, units], k)
    class_rows = top_k_per_column(probs, k)

    reps = {"pixels": images.reshape(len(images), -1)}
    reps.update({f"h{i + 1}": h for i, h in enumerate(outs[:-1])})
    reps["logits"] = outs[-1]
    table, embs = [], {"pca": {}, "tsne": {}}
    t0 = time.perf_counter()
    for depth, (name, feats) in enumerate(reps.items()):
        row = {"depth": depth, "representation": name, "knn_full": knn_accuracy(feats, labels, knn_k)}
        for method in ("pca", "tsne"):
            emb = pca_2d(feats, 2, seed) if method == "pca" else tsne_2d(feats, perplexity, pca_dims, seed)
            embs[method][name] = emb
            row[f"{method}_knn"] = knn_accuracy(emb, labels, knn_k)
            row[f"{method}_silhouette"] = silhouette(emb, labels)
        table.append(row)
        log.info("%s: %s", name, {k_: round(v, 3) for k_, v in row.items() if isinstance(v, float)})
    log.info("embeddings: %.1f s", time.perf_counter() - t0)

    write_metrics("mnist", "analyze_mlp", {
        "n_samples": int(len(labels)), "units": units.tolist(),
        "unit_winners": [len(r) for r in unit_rows], "knn_k": knn_k,
        "separability": {r["representation"]: {k_: v for k_, v in r.items() if k_ not in ("representation", "depth")}
                         for r in table},
    }, data.source)
    with atomic_dir(PLOTS_ROOT / "mnist" / "analyze_mlp") as out:
        write_table_csv(out / "separability.csv", table)
        save_figure(image_grid(grid_cells(images, class_rows, k), len(class_rows), k,
                               titled("highest softmax probability per class", data.source),
                               row_labels=[str(c) for c in range(len(class_rows))]), out / "top_per_class.png")
        save_figure(image_grid(grid_cells(images, unit_rows, k), n_units, k,
                               titled("top images per penultimate unit (assigned to their max unit)", data.source),
                               row_labels=[f"u{u}" for u in units]), out / "top_per_unit.png")
        for method, label in (("pca", "PCA"), ("tsne", "t-SNE")):
            fig, ax = new_figure(4, 2, size=(16, 8))
            for a, (name, emb) in zip(ax.flat, embs[method].items()):
                r = next(t for t in table if t["representation"] == name)
                scatter_panel(a, emb, labels, f"{name}: {knn_k}-NN acc {r[f'{method}_knn']:.3f}, "
                                              f"silhouette {r[f'{method}_silhouette']:.2f}")
            a = ax.flat[-1]
            a.plot([t["depth"] for t in table], [t[f"{method}_knn"] for t in table], "o-", label="2-D k-NN acc")
            a.plot([t["depth"] for t in table], [t["knn_full"] for t in table], "s--", label="full-dim k-NN acc")
            a.set_xticks(range(len(table)), [t["representation"] for t in table], fontsize=7)
            a.set(ylabel="accuracy")
            a.legend(fontsize=7)
            fig.suptitle(titled(f"{label} of each layer's output ({len(labels)} test images)", data.source))
            save_figure(fig, out / f"{method}.png")
        fig, ax = new_figure()
        for key, mk in (("pca_knn", "o-"), ("tsne_knn", "s-"), ("knn_full", "^--")):
            ax[0, 0].plot([t["depth"] for t in table], [t[key] for t in table], mk, label=key)
        ax[0, 0].set_xticks(range(len(table)), [t["representation"] for t in table])
        ax[0, 0].set(ylabel=f"leave-one-out {knn_k}-NN accuracy")
        ax[0, 0].legend()
        ax[0, 0].set_title(titled("separability per layer", data.source))
        save_figure(fig, out / "separability.png")


if __name__ == "__main__":
    run_stage(main, "mnist_analyze_mlp")
