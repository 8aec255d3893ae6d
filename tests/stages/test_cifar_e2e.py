"""The CIFAR family end to end on a tiny synthetic set, in a temporary copy of the repository."""

import json

import pytest
import torch


@pytest.mark.slow
def test_cifar_family_tiny_end_to_end(repo_copy):
    repo_copy.set_params({
        "data.cifar10.n_train": 300, "data.cifar10.n_test": 100,
        "cifar.n_val": 60, "cifar.train.epochs": 2, "cifar.train.batch_size": 64,
        "cifar.pretext.epochs": 1, "cifar.pretext.batch_size": 64,
        "cifar.ssl.n_labelled": 40, "cifar.ssl.epochs": 30, "cifar.ssl.eval_every": 10, "cifar.eval_batch": 64,
        "cifar.ssl.lr_transferred": 1e-5,  # so that the transferred layers stay where the pretext left them
    })
    repo_copy.dvc("repro", "cifar_augment_report", "cifar_ssl_transfer")
    root = repo_copy.path
    m = {name: json.loads((root / "metrics" / "cifar" / f"{name}.json").read_text())
         for name in ("augment", "train_baseline", "train_augmented", "augment_compare", "pretext",
                      "ssl_baseline", "ssl_transfer")}
    assert all(v["data_source"] == "synthetic" for v in m.values())
    assert m["augment"]["n_train"] == 240 and m["augment"]["n_val"] == 60 and m["augment"]["n_augmented"] == 960
    assert m["augment"]["signed_min"] >= -1.0 and m["augment"]["signed_max"] <= 1.0
    assert m["train_augmented"]["n_train_images"] == 4 * m["train_baseline"]["n_train_images"]
    assert m["pretext"]["n_pretext_images"] == 3 * (300 - 40)
    assert m["ssl_transfer"]["epochs"] == 30 and m["ssl_baseline"]["n_labelled"] == 40
    # Headline = final epoch; the best point of the test curve is labelled as chosen on test.
    for step in ("ssl_baseline", "ssl_transfer"):
        curve = (root / f"plots/cifar/{step}/curves.csv").read_text().splitlines()
        assert curve[0] == "epoch,train_loss,test_acc" and [r.split(",")[0] for r in curve[1:]] == ["10", "20", "30"]
        accs = [float(r.split(",")[2]) for r in curve[1:]]
        assert m[step]["final_test_acc"] == accs[-1] and m[step]["test_selected_acc"] == max(accs)
        assert m[step]["selection"].startswith("final epoch")
    # cifar_train: chosen on validation images carved from the training set, tested once.
    for v in ("baseline", "augmented"):
        assert "validation" in m[f"train_{v}"]["selection"] and m[f"train_{v}"]["n_test"] == 100
        val = [float(r.split(",")[2]) for r in
               (root / f"plots/cifar/train_{v}/curves.csv").read_text().splitlines()[1:]]
        assert m[f"train_{v}"]["best_val_acc"] == max(val) == m["augment_compare"][f"best_val_acc_{v}"]
        assert "seconds" not in m[f"train_{v}"] and (root / f"timings/cifar/train_{v}.json").exists()
    for png in ("augment/augment_examples.png", "augment_compare/compare.png", "ssl_transfer/compare.png",
                "pretext/curves.png", "train_baseline/curves.png"):
        assert (root / "plots/cifar" / png).stat().st_size > 1000
    # The transfer model really started from the pretext weights: with a 1e-5 lr for 30 epochs its conv
    # layers stay close to the pretext model's, unlike the baseline's.
    pre = torch.load(root / "data/models/cifar/pretext.pt", weights_only=True)["state_dict"]
    tra = torch.load(root / "data/models/cifar/ssl_transfer.pt", weights_only=True)["state_dict"]
    base = torch.load(root / "data/models/cifar/ssl_baseline.pt", weights_only=True)["state_dict"]
    d_tra = (tra["conv1.weight"] - pre["conv1.weight"]).abs().max().item()
    d_base = (base["conv1.weight"] - pre["conv1.weight"]).abs().max().item()
    assert d_tra < 0.01 < d_base
    # params.yaml's default transfers the conv layers only: FC 20 starts fresh
    assert m["ssl_transfer"]["transferred_layers"] == ["conv1", "conv2"]
    assert (tra["fc1.weight"] - pre["fc1.weight"]).abs().max().item() > 0.01
    # A second repro does nothing.
    out = repo_copy.dvc("repro", "cifar_augment_report", "cifar_ssl_transfer").stdout
    assert "didn't change" in out or "up to date" in out.lower()
