"""The generative family's recipes (src/dlsys/tasks/generative.py), run in-process on tiny synthetic data.

A module-scoped lab holds tiny synthetic MNIST and rotated sevens (built by the data layer) and an untrained
baseline classifier; every stage test works in its own copy of it. Each test names the bug it catches.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlsys.core.context import load_checkpoint, stage_main
from dlsys.core.errors import UserError
from dlsys.core.overlay import apply_dotted
from dlsys.core.params import Params
from dlsys.data.registry import acquire
from dlsys.models.gan import Generator
from dlsys.models.mlp import MLP, MLPConfig, save_mlp
from dlsys.models.vae import VAE
from dlsys.tasks import generative
from dlsys.training import TensorBatches, fit

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "data.mnist.n_train": 120, "data.mnist.n_test": 60, "data.sevens.n_train": 96, "data.sevens.n_test": 48,
    "generative.vae.epochs": 2, "generative.vae.hidden": [32, 16], "generative.vae.batch_size": 32,
    "generative.vae.traverse_step": 2.5,
    "generative.cgan.epochs": 2, "generative.cgan.batch_size": 40, "generative.cgan.g_hidden": [32],
    "generative.cgan.d_hidden": [32, 16], "generative.cgan.eval_per_class": 6,
    "generative.cgan.eval_per_class_epoch": 3,
    "generative.imputer.epochs": 2, "generative.imputer.batch_size": 40, "generative.imputer.g_hidden": [32],
    "generative.imputer.d_hidden": [32, 16], "generative.imputer.n_show": 3,
}
DIVERGE = {"vae": {"generative.vae.lr": 1e30},
           "cgan": {"generative.cgan.g_lr": 1e30, "generative.cgan.d_lr": 1e30},
           "imputer": {"generative.imputer.g_lr": 1e30, "generative.imputer.d_lr": 1e30}}


def _params(updates: dict) -> dict:
    return apply_dotted(yaml.safe_load((ROOT / "params.yaml").read_text()), {"device": "cpu", **updates})


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory) -> Path:
    """data/ with tiny synthetic MNIST, sevens, and an (untrained) baseline classifier."""
    root = tmp_path_factory.mktemp("generative_lab")
    params = Params(_params(TINY))
    for name in ("mnist", "sevens"):
        acquire(name, params, seed=0, root=root)
    torch.manual_seed(0)
    save_mlp(MLP(MLPConfig(hidden=[16] * 5)), root / generative.CLASSIFIER)
    return root / "data"


@pytest.fixture
def lab(lab_data, tmp_path, monkeypatch):
    """A working directory holding a copy of the lab's data; `lab(stage, variant, **params)` runs a stage."""
    shutil.copytree(lab_data, tmp_path / "data")
    monkeypatch.chdir(tmp_path)

    def run(stage: str, variant: str | None = None, **updates) -> Path:
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params({**TINY, **updates})))
        fn = {"generative_vae": generative.run_vae, "generative_cgan": generative.run_cgan,
              "generative_imputer": generative.run_imputer}[stage]
        stage_main(stage, fn, "doc", variant=None if variant is None else "lam",
                   argv=[] if variant is None else [variant])
        return tmp_path

    return run


def _metrics(root: Path, step: str) -> dict:
    return json.loads((root / "metrics/generative" / f"{step}.json").read_text())


def _csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ recipes and small functions

def test_vae_loss_names_its_terms_and_fit_logs_them():
    """Bug caught: the loss returning BCE alone (or the terms not summing to the loss that is optimised)."""
    torch.manual_seed(0)
    model = VAE(2, [16])
    x = (torch.rand(40, 784) > 0.5).float()
    out = generative.vae_loss(model, (x,))
    assert set(out) == {"loss", "bce", "kl"} and out["kl"] > 0
    torch.testing.assert_close(out["loss"], out["bce"] + out["kl"])
    hist = fit(model, torch.optim.Adam(model.parameters(), 1e-3),
               TensorBatches([x], 16, generator=torch.Generator().manual_seed(0)), generative.vae_loss, 2)
    for row in hist.rows:
        assert row["train_kl"] > 0
        assert row["train_loss"] == pytest.approx(row["train_bce"] + row["train_kl"], rel=1e-6)


def test_recipes_read_the_generative_group_and_refuse_bad_values():
    """Bug caught: a recipe reading the old top-level keys, or accepting an empty traversal / a patch off the image."""
    p = _params({})
    assert generative.VaeRecipe.from_params(Params(p)).latent_dim == p["generative"]["vae"]["latent_dim"]
    assert generative.CganRecipe.from_params(Params(p)).mismatch_weight == p["generative"]["cgan"]["mismatch_weight"]
    imp = generative.ImputerRecipe.from_params(Params(p))
    assert (imp.patch_lo, imp.patch_size) == (p["generative"]["imputer"]["patch_lo"],
                                              p["generative"]["imputer"]["patch_size"])
    bad = _params({"generative.vae.traverse_max": -5.0})
    with pytest.raises(UserError, match="generative.vae.traverse_max"):
        generative.VaeRecipe.from_params(Params(bad))
    bad = _params({"generative.imputer.patch_lo": 20, "generative.imputer.patch_size": 10})
    with pytest.raises(UserError, match="generative.imputer.patch_lo"):
        generative.ImputerRecipe.from_params(Params(bad))
    # a learning rate far too large is allowed (the run records its divergence); zero trains nothing
    assert generative.VaeRecipe.from_params(Params(_params(DIVERGE["vae"]))).lr == 1e30
    with pytest.raises(UserError, match="generative.cgan.g_lr"):
        generative.CganRecipe.from_params(Params(_params({"generative.cgan.g_lr": 0.0})))


@pytest.mark.parametrize("text,ok", [("0", 0.0), ("0.1", 0.1), ("10", 10.0), ("abc", None), ("-1", None),
                                     ("nan", None)])
def test_parse_lambda(text, ok):
    if ok is None:
        with pytest.raises(UserError, match="λ must be"):
            generative.parse_lambda(text)
    else:
        assert generative.parse_lambda(text) == ok


def test_rotation_analysis_finds_the_unit_that_tracks_the_angle():
    """Bug caught: analysing the estimated tilt when true angles exist, or reporting the wrong dimension."""
    g = torch.Generator().manual_seed(0)
    n = 64
    angles = torch.linspace(-40, 40, n).numpy()
    mu = torch.randn(n, 3, generator=g).numpy()
    mu[:, 1] = -angles / 40 + 0.05 * mu[:, 0]
    images = torch.zeros(n, 28, 28)
    images[:, 4:24, 13:15] = 1.0  # upright bars: axis tilt 0 for all, so it cannot explain the latent
    res = generative.rotation_analysis(mu, images.numpy(), angles)
    assert res["metrics"]["rotation_dim"] == 1 and res["metrics"]["rotation_rho"] < -0.99
    assert res["metrics"]["angle_source"].startswith("sidecar")
    assert res["angles"] is angles
    # the bars' principal-axis tilt is constant: it tracks neither the angle nor the latent
    assert not np.isfinite(res["metrics"]["axis_tilt_rho_vs_true_angle"])
    recovered = generative.rotation_analysis(mu, images.numpy(), angles, "recovered from the MNIST sources: …")
    assert recovered["metrics"]["angle_source"] == "recovered from the MNIST sources: …"
    assert recovered["metrics"]["rotation_rho"] == res["metrics"]["rotation_rho"]


# ------------------------------------------------------------------ stages, in-process

def test_vae_stage_names_how_its_angles_were_obtained(lab, tmp_path):
    """Bug caught: the stage dropping the angles' provenance, so recovered real angles read as a sidecar."""
    sidecar = tmp_path / "data/raw/sevens/angles.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "method": "recovered from the MNIST sources: test"}))
    m = _metrics(lab("generative_vae"), "vae")
    assert m["angle_source"] == "recovered from the MNIST sources: test"
    assert len(m["rho_per_dim_vs_axis_tilt"]) == 4


def test_vae_stage(lab):
    """Bugs caught: BCE/KL missing from the curves, traversals not one per latent unit, the checkpoint not
    rebuilding the model, the metrics not saying how the model was chosen."""
    root = lab("generative_vae")
    m = _metrics(root, "vae")
    assert m["selection"] == "final epoch" and m["diverged"] is False and m["epochs_run"] == 2
    assert m["data_source"] == "synthetic" and m["angle_source"].startswith("sidecar")
    assert len(m["rho_per_dim"]) == 4 and m["rotation_abs_rho"] == max(abs(r) for r in m["rho_per_dim"])
    assert "train_seconds" not in m
    rows = _csv(root / "plots/generative/vae/losses.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[-1]["train_bce"]) == pytest.approx(m["train_bce"]) and float(rows[-1]["test_kl"]) > 0
    plots = root / "plots/generative/vae"
    assert sorted(p.name for p in (plots / "traversals").iterdir()) == [f"dim{k}.png" for k in range(4)]
    assert (plots / "losses.png").exists() and (plots / "latent_vs_angle.png").exists()
    ckpt = load_checkpoint(root / "data/models/generative/vae.pt")
    VAE(**ckpt["config"]).load_state_dict(ckpt["state_dict"])
    assert "train_seconds" in json.loads((root / "timings/generative/vae.json").read_text())


def test_cgan_stage(lab):
    """Bugs caught: per-class table not covering every label, the per-epoch consistency curve missing, the
    checkpoint not rebuilding the generator."""
    root = lab("generative_cgan")
    m = _metrics(root, "cgan")
    assert m["selection"] == "final epoch" and m["diverged"] is False and m["epochs_run"] == 2
    assert m["n_generated"] == 60 and set(m["per_class_consistency"]) == {str(k) for k in range(10)}
    assert m["class_consistency"] == pytest.approx(sum(m["per_class_consistency"].values()) / 10)
    assert m["mismatch_weight"] > 0 and m["d_acc_mismatch"] is not None
    rows = _csv(root / "plots/generative/cgan/training.csv")
    assert len(rows) == 2 and all(r["class_consistency"] != "" for r in rows)
    assert len(_csv(root / "plots/generative/cgan/class_consistency.csv")) == 10
    ckpt = load_checkpoint(root / "data/models/generative/cgan.pt")
    cfg = ckpt["config"]
    G = Generator(cfg["noise_dim"], 10, cfg["g_hidden"])
    G.load_state_dict({k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items()
                       if k.startswith("generator.")})


def test_imputer_stage_weights_the_patch_term_by_lambda(lab):
    """Bugs caught: λ not reaching the generator loss (g_penalty 0 for λ > 0, or > 0 for λ = 0); outputs not
    named by λ as written on the command line."""
    root = lab("generative_imputer", "0.1")
    lab("generative_imputer", "0")
    m = _metrics(root, "imputer_lam0.1")
    assert m["lambda"] == 0.1 and m["selection"] == "final epoch" and m["diverged"] is False
    assert 0 <= m["centre_patch_mse"] and 0 <= m["label_fraction"] <= 1
    with_term = _csv(root / "plots/generative/imputer_lam0.1/training.csv")
    without = _csv(root / "plots/generative/imputer_lam0/training.csv")
    assert all(float(r["g_penalty"]) > 0 for r in with_term)
    assert all(float(r["g_penalty"]) == 0 for r in without)
    assert (root / "plots/generative/imputer_lam0.1/samples.png").exists()
    assert load_checkpoint(root / "data/models/generative/imputer_lam0.1.pt")["config"]["lam"] == 0.1


def test_bad_lambda_is_one_line(lab, capsys):
    with pytest.raises(SystemExit) as exc:
        lab("generative_imputer", "abc")
    assert exc.value.code == 2 and "λ must be a number" in capsys.readouterr().err


@pytest.mark.parametrize("stage,variant,step", [("generative_vae", None, "vae"), ("generative_cgan", None, "cgan"),
                                                ("generative_imputer", "10", "imputer_lam10")])
def test_a_diverging_learning_rate_is_recorded_not_scored(lab, stage, variant, step):
    """lr 1e30: the run finishes (exit 0), metrics say diverged, curves are drawn, the saved model is marked
    diverged (loading it is refused), and nothing is scored from NaN weights.
    Bugs caught: scoring a diverged model, saving NaN weights as good, no curves for a diverged run."""
    group = step.split("_lam")[0]
    root = lab(stage, variant, **DIVERGE[group])
    m = _metrics(root, step)
    assert m["diverged"] is True and m["selection"] == "final epoch"
    scored = {"vae": ["rotation_dim", "rho_per_dim"], "cgan": ["class_consistency", "per_class_consistency"],
              "imputer": ["centre_patch_mse", "label_fraction"]}[group]
    assert all(m.get(k) is None for k in scored), {k: m.get(k) for k in scored}
    model = root / f"data/models/generative/{step}.pt"
    with pytest.raises(UserError, match="diverged"):
        load_checkpoint(model)
    curves = "losses" if group == "vae" else "training"
    rows = _csv(root / f"plots/generative/{step}/{curves}.csv")
    assert rows and (root / f"plots/generative/{step}/{curves}.png").stat().st_size > 0
    # several steps per epoch: the loss itself turns non-finite in the first epoch, and training stops there
    assert m["diverged_at"] == 1 and m["epochs_run"] == 1 and [int(r["epoch"]) for r in rows] == [1]
    assert not math.isfinite(float(rows[-1]["train_loss" if group == "vae" else "d_loss"] or "nan"))
