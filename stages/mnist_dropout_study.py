"""mnist_dropout_study: 1024×5 FC net, Adam; {sigmoid+Xavier, ReLU+He} × {no dropout, dropout}.

Dropout: p_input on the input pixels, p_hidden on the input of every later layer. Train and test
error per epoch for the four runs, overlaid.
"""

import logging

from dlsys.core import load_params, device_from_params, seed_everything, write_metrics, write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.models.mlp import MLP, MLPConfig
from dlsys.models.mnist_task import TrainConfig, load_mnist_tensors, train_classifier
from dlsys.plots import new_figure, save_figure, titled

log = logging.getLogger("dlsys.mnist_dropout_study")
SETUPS = [("sigmoid_xavier", "sigmoid", "xavier"), ("relu_he", "relu", "he")]


def main() -> None:
    p = load_params()
    q = p.sub("mnist.dropout_study")
    hidden = q.list("hidden", item_type=int, min_len=1, lo=1)
    p_in, p_hid = q.float("p_input", lo=0.0, hi=0.99), q.float("p_hidden", lo=0.0, hi=0.99)
    n_eval = q.int("train_eval_n", lo=1)
    tc = TrainConfig(optimizer="adam", lr=q.float("lr", lo=0.0), epochs=q.int("epochs", lo=1),
                     batch_size=q.int("batch_size", lo=1))
    device = device_from_params(p)
    seed = p.int("seed", lo=0)
    seed_everything(seed)
    data = load_mnist_tensors(device)

    results, curves = {}, {}
    for name, act, init in SETUPS:
        for dropout in (False, True):
            key = f"{name}_{'dropout' if dropout else 'plain'}"
            gen = seed_everything(seed)
            cfg = MLPConfig(hidden=hidden, activation=act, init=init,
                            dropout_input=p_in if dropout else 0.0, dropout_hidden=p_hid if dropout else 0.0)
            model = MLP(cfg, generator=gen).to(device)
            hist = train_classifier(model, data, tc, gen, desc=key, train_eval_n=n_eval)
            last = hist.rows[-1]
            results[key] = {"test_err": last.get("test_err"), "train_err": last.get("train_err"),
                            "best_test_err": min((r["test_err"] for r in hist.rows if "test_err" in r),
                                                 default=None),
                            "diverged": hist.diverged}
            curves[key] = hist.rows
            log.info("%s: %s", key, results[key])
    write_metrics("mnist", "dropout_study", {"train_err_samples": min(n_eval, len(data.x_train)), **results},
                  data.source)

    epochs = sorted({r["epoch"] for rows in curves.values() for r in rows})
    table = []
    for e in epochs:
        row = {"epoch": e}
        for key, rows in curves.items():
            r = next((r for r in rows if r["epoch"] == e), {})
            row[f"{key}_train_err"] = r.get("train_err")
            row[f"{key}_test_err"] = r.get("test_err")
        table.append(row)
    with atomic_dir(PLOTS_ROOT / "mnist" / "dropout_study") as out:
        write_table_csv(out / "errors.csv", table)
        fig, ax = new_figure(size=(6.5, 4.2))
        a = ax[0, 0]
        for key, rows in curves.items():
            ep = [r["epoch"] for r in rows if "test_err" in r]
            line = a.plot(ep, [100 * r["test_err"] for r in rows if "test_err" in r], "o-", ms=3,
                          label=f"{key.replace('_', ' ')}: test")[0]
            a.plot(ep, [100 * r["train_err"] for r in rows if "train_err" in r], "--", color=line.get_color(),
                   label=f"{key.replace('_', ' ')}: train")
        a.set(xlabel="epoch", ylabel="error (%)", yscale="log")
        a.legend(fontsize=6, ncol=2)
        a.set_title(titled(f"dropout {p_in:g}/{p_hid:g}, 5x{hidden[0]} net, Adam", data.source))
        save_figure(fig, out / "errors.png")


if __name__ == "__main__":
    run_stage(main, "mnist_dropout_study")
