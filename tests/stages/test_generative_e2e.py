"""Tiny end-to-end run of the generative family (VAE, cGAN, imputer over λ) in a copy of the repo."""

import json

import pytest

TINY = {
    "data.mnist.n_train": 600, "data.mnist.n_test": 200,
    "data.sevens.n_train": 200, "data.sevens.n_test": 100,
    "mnist.mlp.hidden": [64] * 5, "mnist.train.epochs": 1,
    "generative.vae.epochs": 2, "generative.vae.hidden": [64, 32],
    "generative.cgan.epochs": 2, "generative.cgan.eval_per_class": 20, "generative.cgan.eval_per_class_epoch": 5,
    "generative.imputer.epochs": 1, "generative.imputer.n_show": 4,
}


@pytest.mark.slow
def test_generative_family_end_to_end(repo_copy):
    repo_copy.set_params(TINY)
    repo_copy.dvc("repro", "generative_vae", "generative_cgan", "generative_imputer")
    m = lambda step: json.loads((repo_copy.path / "metrics/generative" / f"{step}.json").read_text())  # noqa: E731
    vae = m("vae")
    assert vae["data_source"] == "synthetic" and vae["epochs_run"] == 2 and vae["selection"] == "final epoch"
    assert len(vae["rho_per_dim"]) == 4 and vae["rotation_abs_rho"] == max(abs(r) for r in vae["rho_per_dim"])
    assert vae["angle_source"].startswith("sidecar")
    plots = repo_copy.path / "plots/generative"
    assert sorted(p.name for p in (plots / "vae/traversals").iterdir()) == [f"dim{k}.png" for k in range(4)]
    cgan = m("cgan")
    assert cgan["n_generated"] == 200 and set(cgan["per_class_consistency"]) == {str(k) for k in range(10)}
    assert cgan["class_consistency"] == pytest.approx(sum(cgan["per_class_consistency"].values()) / 10) and cgan["epochs_run"] == 2
    assert cgan["mismatch_weight"] > 0 and 0 <= cgan["d_acc_mismatch"] <= 1
    assert (plots / "cgan/samples.png").exists() and (plots / "cgan/class_consistency.csv").exists()
    assert (plots / "cgan/training.png").exists() and (plots / "vae/losses.png").exists()
    for lam in ("0", "0.1", "10"):
        imp = m(f"imputer_lam{lam}")
        assert imp["lambda"] == float(lam) and 0 <= imp["label_fraction"] <= 1 and imp["centre_patch_mse"] >= 0
        assert (plots / f"imputer_lam{lam}/samples.png").exists() and not imp["diverged"]
    # a bad λ is a one-line user error
    bad = repo_copy.stage("stages/generative_imputer.py", "abc", check=False)
    assert bad.returncode == 2 and "λ must be a number" in bad.stderr
