"""Tiny end-to-end run of the MNIST family through DVC in a temporary copy of the repo (1 epoch, small sizes).

The stages' behaviour on hostile params (lr 1e30, lr 0, rank above min(m, n)) is tested in process in
tests/tasks/test_mnist.py; this file checks what only DVC can: the pipeline, and which stages a param reaches.
"""

import json

import pytest

TINY = {
    "data.mnist.n_train": 600, "data.mnist.n_test": 200,
    "mnist.mlp.hidden": [64] * 5, "mnist.train.epochs": 1,
    "mnist.analyze.n_samples": 120, "mnist.analyze.pca_dims": 10, "mnist.analyze.tsne_perplexity": 10,
    "mnist.init_study.hidden": [32] * 5, "mnist.init_study.epochs": 1, "mnist.init_study.log_every": 2,
    "mnist.dropout_study.hidden": [32] * 5, "mnist.dropout_study.epochs": 1,
    "mnist.dropout_study.train_eval_n": 100,
    "mnist.svd.finetune.epochs": 1, "mnist.svd.in_loop.epochs": 1, "mnist.svd.finetune.n_val": 100,
    "mnist.svd.in_loop.n_val": 100,
    "mnist.svd.rank": 5, "mnist.svd.ranks": [5, 20, "full"],
}
STAGES = ["mnist_train_mlp", "mnist_analyze_mlp", "mnist_init_study", "mnist_dropout_study",
          "mnist_compress_svd", "mnist_svd_finetune", "mnist_svd_in_loop"]


@pytest.mark.slow
def test_mnist_family_end_to_end(repo_copy):
    repo_copy.set_params(TINY)
    repo_copy.dvc("repro", *STAGES)
    m = lambda step: json.loads((repo_copy.path / "metrics" / "mnist" / f"{step}.json").read_text())  # noqa: E731
    assert m("train_mlp")["data_source"] == "synthetic"
    sweep = m("compress_svd")["sweep"]
    assert [r["rank"] for r in sweep] == [5, 20, "full"]
    assert sweep[-1]["test_acc"] == pytest.approx(m("compress_svd")["baseline_test_acc"], abs=1e-9)
    ft = m("svd_finetune")
    assert ft["test_acc_before"] == pytest.approx(sweep[0]["test_acc"], abs=1e-9)
    loop = m("svd_in_loop")
    assert loop["rank"] == 5 and "epoch_time_ratio" not in loop  # a timing: timings/, not metrics
    timing = json.loads((repo_copy.path / "timings/mnist/svd_in_loop.json").read_text())
    assert timing["epoch_time_ratio"] > 0
    init = m("init_study_sgd")
    assert {init[n]["state"] for n in ("sigmoid_normal", "relu_he")} <= {"learns", "stalls", "overfits", "diverges"}
    assert (repo_copy.path / "plots/mnist/analyze_mlp/tsne.png").exists()
    assert (repo_copy.path / "plots/mnist/init_study_adam/train_loss.png").exists()
    # the checkpoint other families load
    import sys
    sys.path.insert(0, str(repo_copy.path / "src"))
    from dlsys.models.mlp import load_mlp_classifier
    import torch
    clf = load_mlp_classifier(repo_copy.path / "data/models/mnist/mlp.pt")
    assert clf(torch.rand(3, 28, 28)).shape == (3, 10)
    # changing mnist.svd.rank re-runs exactly the two stages that read it
    repo_copy.set_params({"mnist.svd.rank": 4})
    status = repo_copy.dvc("status", *STAGES).stdout
    changed = {line.rstrip(":").strip() for line in status.splitlines() if line and not line.startswith("\t")
               and line.rstrip().endswith(":") and not line.startswith(" ")}
    assert changed == {"mnist_svd_finetune", "mnist_svd_in_loop"}, status

