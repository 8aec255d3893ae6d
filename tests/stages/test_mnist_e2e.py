"""Tiny end-to-end run of the MNIST family in a temporary copy of the repo (1 epoch, small sizes)."""

import json

import pytest

TINY = {
    "data.mnist.n_train": 600, "data.mnist.n_test": 200,
    "mnist.mlp.hidden": [64] * 5, "mnist.train.epochs": 1,
    "mnist.analyze.n_samples": 120, "mnist.analyze.pca_dims": 10, "mnist.analyze.tsne_perplexity": 10,
    "mnist.init_study.hidden": [32] * 5, "mnist.init_study.epochs": 1, "mnist.init_study.log_every": 2,
    "mnist.dropout_study.hidden": [32] * 5, "mnist.dropout_study.epochs": 1,
    "mnist.dropout_study.train_eval_n": 100,
    "mnist.finetune.epochs": 1, "mnist.svd_in_loop.epochs": 1,
    "svd.rank": 5, "svd.ranks": [5, 20, "full"],
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
    assert loop["epoch_time_ratio"] > 0 and loop["rank"] == 5
    assert set(m("init_study_sgd")) >= {"sigmoid_normal", "relu_he"}
    assert (repo_copy.path / "plots/mnist/analyze_mlp/tsne.png").exists()
    assert (repo_copy.path / "plots/mnist/init_study_adam/train_loss.png").exists()
    # the checkpoint other families load
    import sys
    sys.path.insert(0, str(repo_copy.path / "src"))
    from dlsys.models.mlp import load_mlp_classifier
    import torch
    clf = load_mlp_classifier(repo_copy.path / "data/models/mnist/mlp.pt")
    assert clf(torch.rand(3, 28, 28)).shape == (3, 10)
    # changing svd.rank re-runs exactly the two stages that read it
    repo_copy.set_params({"svd.rank": 4})
    status = repo_copy.dvc("status", *STAGES).stdout
    changed = {line.rstrip(":").strip() for line in status.splitlines() if line and not line.startswith("\t")
               and line.rstrip().endswith(":") and not line.startswith(" ")}
    assert changed == {"mnist_svd_finetune", "mnist_svd_in_loop"}, status


@pytest.mark.slow
def test_diverging_sgd_run_is_recorded_not_raised(repo_copy):
    """ReLU + He with plain SGD lr = 1e4 diverges: the stage completes and records it."""
    repo_copy.set_params({**TINY, "mnist.init_study.sgd.lr": 1.0e4})
    repo_copy.dvc("repro", "acquire_mnist")
    repo_copy.stage("stages/mnist_init_study.py", "sgd")
    res = json.loads((repo_copy.path / "metrics/mnist/init_study_sgd.json").read_text())
    assert res["relu_he"]["diverged"] is True
    assert res["relu_he"]["diverged_at_iteration"] >= 1
    assert res["relu_he"]["final_train_loss"] is None  # NaN stored as null
    csv = (repo_copy.path / "plots/mnist/init_study_sgd/train_loss.csv").read_text()
    assert "relu_he" in csv.splitlines()[0]
