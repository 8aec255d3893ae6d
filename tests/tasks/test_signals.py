"""The signals task module: recipes from params, split-disjoint background clips, diverging runs.

Each training stage runs in-process on tiny fixtures written here (no DVC), through `stage_main`, as the
stage script would.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlsys.core.context import load_checkpoint, stage_main
from dlsys.core.errors import UserError
from dlsys.core.outputs import load_torch, save_torch
from dlsys.core.overlay import apply_dotted
from dlsys.core.params import Params, read_yaml
from dlsys.data.har import ACTIVITIES, RAW_FILE
from dlsys.evaluation.verification import accuracy_at
from dlsys.features.keywords import SPLITS, background_segments
from dlsys.models.kws_cnn import build as build_kws
from dlsys.models.siamese import Siamese, SpeakerEncoder
from dlsys.tasks import signals

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = {"source": "synthetic"}


def _repo_params() -> dict:
    return read_yaml((ROOT / "params.yaml").read_text())


# ------------------------------------------------------------------------------------------- recipes

def test_recipes_read_the_signals_group_with_keywords_as_strings():
    p = Params(_repo_params())
    kws = signals.KwsFeatures.from_params(p)
    # YAML 1.1 would read yes/no/on/off as booleans; the commands must stay words.
    assert kws.commands[:2] == ("yes", "no") and "on" in kws.commands and "off" in kws.commands
    assert kws.classes[-2:] == ["unknown", "background"] and len(kws.classes) == len(kws.commands) + 2
    assert kws.length == round(kws.segment_seconds * kws.sr)
    assert signals.SiameseRecipe.from_params(p).epochs == p.sub("signals").sub("speaker").int("epochs")
    assert signals.HarRecipe.from_params(p).window == p.sub("signals").sub("har").int("window")
    assert signals.KwsRecipe.from_params(p).filters == tuple(p.sub("signals").sub("kws").list("filters"))


def test_recipes_refuse_a_zero_learning_rate_and_a_zero_background_gain():
    with pytest.raises(UserError, match="signals.har.lr"):
        signals.HarRecipe.from_params(Params(apply_dotted(_repo_params(), {"signals.har.lr": 0})))
    with pytest.raises(UserError, match="background_gain"):
        signals.KwsFeatures.from_params(Params(apply_dotted(_repo_params(), {"signals.kws.background_gain": [0, 1.0]})))


# ------------------------------------------------------------------------------- background clips

def test_background_clips_never_share_a_noise_sample_between_splits():
    # A ramp: every sample value says where in the file it came from.
    noises = [np.arange(20_000, dtype=np.float64), np.arange(20_000, 50_000, dtype=np.float64)]
    counts = {"train": 40, "validation": 10, "testing": 10}
    clips = background_segments(noises, counts, 500, (1.0, 1.0), np.random.default_rng(0))
    assert {s: len(c) for s, c in clips.items()} == counts
    used = {s: set(np.unique(c[c > 0]).tolist()) for s, c in clips.items()}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not used[a] & used[b], f"{a} and {b} share noise samples"
    # Each split draws from its own share of each file: train (40 of 60 clips) from the first 2/3.
    train = np.array(sorted(used["train"]))
    assert train[train < 20_000].max() < 20_000 * 2 / 3
    assert train[train >= 20_000].max() < 20_000 + 30_000 * 2 / 3


def test_background_gain_is_log_uniform_in_range():
    noise = [np.ones(10_000)]
    clips = background_segments(noise, {"train": 200, "validation": 0, "testing": 0}, 100, (1e-4, 1.0),
                                np.random.default_rng(1))
    g = np.log10(clips["train"][:, 0])
    assert g.min() >= -4 - 1e-6 and g.max() <= 1e-6
    assert abs(np.median(g) + 2) < 0.4  # log-uniform: median near the middle in decades


# ------------------------------------------------------------------------------- verification

def test_verification_metrics_of_non_finite_scores_are_none_not_an_exception():
    label = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert signals.verification_metrics(torch.tensor([1.0, float("nan"), 2.0, -1.0]), label) == {
        "test_accuracy": None, "eer": None, "roc_auc": None}
    good = signals.verification_metrics(torch.tensor([3.0, -3.0, 2.0, -1.0]), label)
    assert good == {"test_accuracy": 1.0, "eer": 0.0, "roc_auc": 1.0}


# ------------------------------------------------------------------------------- stages, in-process

def _write_har(root: Path) -> None:
    """4 users × 6 activities × 12 s at 20 Hz: each activity its own frequency."""
    rng = np.random.default_rng(0)
    lines = []
    t = np.arange(240) / 20.0
    for user in range(1, 5):
        for a, act in enumerate(ACTIVITIES):
            xyz = np.stack([np.sin(2 * np.pi * (0.5 + a) * t + k) for k in range(3)], 1) * 3
            xyz += 0.3 * rng.standard_normal(xyz.shape)
            lines += [f"{user},{act},{1000 + i},{x:.4f},{y:.4f},{z:.4f};" for i, (x, y, z) in enumerate(xyz)]
    raw = root / "data/raw/har"
    raw.mkdir(parents=True)
    (raw / RAW_FILE).write_text("\n".join(lines) + "\n")
    (raw / "dataset.json").write_text(json.dumps({"name": "har", **SYNTHETIC}))


def _write_speaker_features(root: Path) -> None:
    g = torch.Generator().manual_seed(0)
    u = 4
    train, test = torch.rand(6 * u, 9, 7, generator=g), torch.rand(3 * u, 9, 7, generator=g)
    from dlsys.features.pairs import all_pairs

    pairs = all_pairs(3, u, 4, np.random.default_rng(0))
    save_torch({"train": train, "test": test, "utterances_per_speaker": u, "source": "synthetic",
                "datasets": {"speakers": SYNTHETIC}, "test_first": torch.from_numpy(pairs.first),
                "test_second": torch.from_numpy(pairs.second), "test_label": torch.from_numpy(pairs.label)},
               root / "data/features/signals/speakers.pt")


def _write_kws_features(root: Path) -> None:
    g = torch.Generator().manual_seed(0)
    classes = ["yes", "no", "unknown", "background"]
    data = {"classes": classes, "source": "synthetic", "datasets": {"speech_commands": SYNTHETIC}, "log_eps": 1e-6}
    for split, n in (("train", 32), ("validation", 8), ("testing", 8)):
        data[split] = {"x": torch.randn(n, 8, 12, generator=g), "y": torch.arange(n) % 4}
    save_torch(data, root / "data/features/signals/kws.pt")


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A working directory with params.yaml and every signals input, sized to run in seconds."""
    _write_har(tmp_path)
    _write_speaker_features(tmp_path)
    _write_kws_features(tmp_path)
    params = apply_dotted(_repo_params(), {
        "device": "cpu",
        "signals.har.window": 80, "signals.har.step": 40, "signals.har.first_test_subject": 4,
        "signals.har.epochs": 3, "signals.har.batch_size": 16,
        "signals.speaker.hidden": 8, "signals.speaker.embedding": 4, "signals.speaker.epochs": 3,
        "signals.speaker.pairs_per_speaker": 4, "signals.speaker.n_val_speakers": 2,
        "signals.kws.filters": [4, 8], "signals.kws.pooled_blocks": 1,
        "signals.kws.train.epochs": 3, "signals.kws.train.batch_size": 8, "signals.kws.train.lr_drop_epoch": 2,
    })
    monkeypatch.chdir(tmp_path)

    def run(stage: str, updates: dict | None = None) -> dict:
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(apply_dotted(params, updates or {}),
                                                            sort_keys=False))
        name, _, variant = stage.partition("@")
        kwargs = {"variant": "model", "choices": signals.HAR_MODELS, "argv": [variant]} if variant else {"argv": []}
        step = {"signals_siamese": "siamese", "signals_kws": "kws"}.get(name, f"har_{variant}")
        stage_main(name, getattr(signals, "run_" + step.split("_")[0]), "test", **kwargs)
        return json.loads((tmp_path / f"metrics/signals/{step}.json").read_text())

    return run


TRAINING = {"signals_siamese": ("signals.speaker.lr", "siamese", "siamese.pt"),
            "signals_kws": ("signals.kws.train.lr", "kws", "kws_cnn.pt"),
            "signals_har@dense": ("signals.har.lr", "har_dense", "har_dense.pt"),
            "signals_har@cnn1d": ("signals.har.lr", "har_cnn1d", "har_cnn1d.pt")}


@pytest.mark.parametrize("stage", list(TRAINING))
def test_training_stage_runs_and_states_how_its_model_was_chosen(lab, stage):
    lr_key, step, model = TRAINING[stage]
    m = lab(stage)
    assert m["diverged"] is False and "diverged_at_epoch" not in m
    assert "train_seconds" not in m and "cpu_seconds" not in m  # timings live under timings/
    assert json.loads(Path(f"timings/signals/{step}.json").read_text())["train_seconds"] >= 0
    assert m["selection"].startswith("best val_accuracy" if stage == "signals_kws" else "final epoch")
    ckpt = load_checkpoint(f"data/models/signals/{model}")
    assert ckpt["diverged"] is False and ckpt["stage"] == stage.split("@")[0]
    rows = Path(f"plots/signals/{step}/curves.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and Path(f"plots/signals/{step}/curves.png").stat().st_size > 0


MARK = 1000.0  # added by the spies below: the features are N(0, 1), so a marked input is unmistakable


def _watch_kws_inputs(monkeypatch) -> list[tuple[bool, bool]]:
    """(training mode, marked input) for every forward pass of the KWS CNN the stage builds."""
    seen = []

    class Watched(signals.KwsCNN):
        def forward(self, x):
            seen.append((self.training, bool((x > MARK / 2).all())))
            return super().forward(x)

    monkeypatch.setattr(signals, "KwsCNN", Watched)
    return seen


def test_kws_shifts_the_training_batches_and_nothing_else(lab, monkeypatch):
    """signals.kws.train.shift_frames reaches every training batch, and only those: the model trains on the
    shifted batches, and validation and test clips are scored as they are."""
    calls = []
    real = signals.time_shift

    def marking(x, max_frames, generator):
        calls.append((len(x), max_frames))
        return real(x, max_frames, generator) + MARK

    monkeypatch.setattr(signals, "time_shift", marking)
    seen = _watch_kws_inputs(monkeypatch)
    lab("signals_kws", {"signals.kws.train.shift_frames": 2})
    # 3 epochs of the 32 training clips in batches of 8: 12 calls, every one shifting by up to 2 frames
    assert calls == [(8, 2)] * 12
    assert [marked for training, marked in seen if training] == [True] * 12  # the shifted batch is what trains
    assert seen and not any(marked for training, marked in seen if not training)


def test_kws_mixes_only_training_background_into_training_batches(lab, monkeypatch):
    """signals.kws.train.background_mix draws its noise from the training split's background clips, at the
    features' log floor, for every training batch and nothing else."""
    feats = load_torch("data/features/signals/kws.pt")
    train_bg = feats["train"]["x"][feats["train"]["y"] == feats["classes"].index("background")]
    calls = []
    real = signals.mix_background

    def marking(x, background, max_gain, eps, generator):
        assert torch.equal(background, train_bg) and eps == feats["log_eps"] and max_gain == 0.7
        calls.append(len(x))
        return real(x, background, max_gain, eps, generator) + MARK

    monkeypatch.setattr(signals, "mix_background", marking)
    seen = _watch_kws_inputs(monkeypatch)
    lab("signals_kws", {"signals.kws.train.background_mix": 0.7})
    assert calls == [8] * 12
    assert [marked for training, marked in seen if training] == [True] * 12
    assert seen and not any(marked for training, marked in seen if not training)


def test_kws_mixing_from_features_without_their_log_floor_is_one_clear_error(lab, capsys):
    path = Path("data/features/signals/kws.pt")
    feats = load_torch(path)
    del feats["log_eps"]
    save_torch(feats, path)
    lab("signals_kws")  # no mixing: the floor is not needed
    with pytest.raises(SystemExit) as exc:
        lab("signals_kws", {"signals.kws.train.background_mix": 0.5})
    err = capsys.readouterr().err
    assert exc.value.code != 0 and "no log_eps" in err and "signals_kws_features" in err and "Traceback" not in err


def test_kws_mixing_without_training_background_clips_is_one_clear_error(lab, capsys):
    """background_fraction 0 leaves nothing to mix in: refused, rather than training silently unmixed."""
    path = Path("data/features/signals/kws.pt")
    feats = load_torch(path)
    keep = feats["train"]["y"] != feats["classes"].index("background")
    feats["train"] = {"x": feats["train"]["x"][keep], "y": feats["train"]["y"][keep]}
    save_torch(feats, path)
    lab("signals_kws")  # no mixing: runs
    with pytest.raises(SystemExit) as exc:
        lab("signals_kws", {"signals.kws.train.background_mix": 0.5})
    err = capsys.readouterr().err
    assert exc.value.code != 0 and "no background" in err and "background_fraction" in err and "Traceback" not in err


def _kws_accuracy(model: torch.nn.Module, split: str) -> float:
    feats = load_torch("data/features/signals/kws.pt")
    with torch.no_grad():
        return (model.eval()(feats[split]["x"]).argmax(1) == feats[split]["y"]).float().mean().item()


def test_a_kws_ensemble_is_its_members_each_at_its_best_epoch_scored_together(lab):
    """signals.kws.train.ensemble trains that many CNNs one after another; each keeps its best validation
    epoch, the checkpoint rebuilds their average, and the metrics give the ensemble's numbers and each
    member's alone. The first member is the single-CNN run."""
    single = lab("signals_kws")
    assert single["ensemble_members"] == 1 and "members" not in single
    m = lab("signals_kws", {"signals.kws.train.ensemble": 3})
    assert m["ensemble_members"] == 3 and len(m["members"]) == 3
    assert m["members"][0] == {"best_val_accuracy": single["best_val_accuracy"], "best_epoch": single["best_epoch"],
                               "test_accuracy": single["test_accuracy"], "diverged": False, "averaged": True}
    assert m["best_epoch"] == [member["best_epoch"] for member in m["members"]] and m["epochs_run"] == [3] * 3
    assert m["member_test_accuracy_mean"] == pytest.approx(sum(x["test_accuracy"] for x in m["members"]) / 3)
    assert "3 ensemble members" in m["selection"] and m["diverged"] is False

    ckpt = load_checkpoint("data/models/signals/kws_cnn.pt")
    model = build_kws(ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    assert len(model.members) == 3
    states = [member.state_dict() for member in model.members]
    assert not torch.equal(states[0]["out.weight"], states[1]["out.weight"])  # their own initial weights
    # the reported numbers are the rebuilt ensemble's, on validation and test clips as they are
    assert m["best_val_accuracy"] == pytest.approx(_kws_accuracy(model, "validation"))
    assert m["test_accuracy"] == pytest.approx(_kws_accuracy(model, "testing"))
    # each member is kept at its own best validation epoch: the first maximum of its own curve
    curves = list(csv.DictReader(open("plots/signals/kws/curves.csv")))
    for i, (member, reported) in enumerate(zip(model.members, m["members"]), start=1):
        assert reported["averaged"] is True
        assert reported["test_accuracy"] == pytest.approx(_kws_accuracy(member, "testing"))
        curve = [float(row[f"val_accuracy_{i}"]) for row in curves]
        assert reported["best_val_accuracy"] == pytest.approx(max(curve)) == pytest.approx(
            _kws_accuracy(member, "validation"))
        assert reported["best_epoch"] == 1 + curve.index(max(curve))
    assert {f"train_loss_{i}" for i in (1, 2, 3)} <= set(curves[0])


def test_a_kws_ensemble_leaves_out_a_member_whose_training_diverged(lab, monkeypatch, capfd):
    built = []

    class SecondDiverges(signals.KwsCNN):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            built.append(self)

        def forward(self, x):
            out = super().forward(x)
            return out * math.nan if len(built) > 1 and self is built[1] and self.training else out

    monkeypatch.setattr(signals, "KwsCNN", SecondDiverges)
    m = lab("signals_kws", {"signals.kws.train.ensemble": 2})
    assert m["diverged"] is True and m["diverged_members"] == [2]
    assert [x["diverged"] for x in m["members"]] == [False, True] and m["members"][1]["test_accuracy"] is None
    assert [x["averaged"] for x in m["members"]] == [True, False]
    assert m["ensemble_members"] == 2 and m["ensemble_members_averaged"] == 1 and "1 averaged" in m["selection"]
    assert m["test_accuracy"] == m["members"][0]["test_accuracy"] is not None  # the surviving member alone
    assert load_checkpoint("data/models/signals/kws_cnn.pt")["config"]["members"] == 1
    assert "NaN" not in Path("metrics/signals/kws.json").read_text()
    assert "signals_kws diverged at epoch 1" in capfd.readouterr().err


@pytest.mark.parametrize("stage", list(TRAINING))
def test_training_stage_survives_a_diverging_learning_rate(lab, stage, capfd):
    lr_key, step, model = TRAINING[stage]
    m = lab(stage, {lr_key: 1e30})  # returns: the stage exited normally
    assert m["diverged"] is True and m["diverged_at_epoch"] >= 1
    assert m["epochs_run"] == m["diverged_at_epoch"] <= 3
    assert f"{stage} WARNING {stage.split('@')[0]} diverged at epoch" in capfd.readouterr().err
    # No non-finite number passes for a result: the test numbers are null, or come from a finite model.
    path = f"data/models/signals/{model}"
    try:
        ckpt = load_checkpoint(path)
    except UserError:
        headline = m.get("test_accuracy", m.get("accuracy"))
        assert headline is None
    else:
        assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    text = Path(f"metrics/signals/{step}.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    rows = Path(f"plots/signals/{step}/curves.csv").read_text().splitlines()
    assert len(rows) == 1 + m["epochs_run"]
    assert Path(f"plots/signals/{step}/curves.png").stat().st_size > 0


def test_the_siamese_accuracy_is_measured_at_the_decision_threshold(lab, monkeypatch):
    """A threshold at the median test logit (not 0): the reported accuracy is the one at that cut."""
    m = lab("signals_siamese")
    ckpt = load_checkpoint("data/models/signals/siamese.pt")
    model = Siamese(SpeakerEncoder(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    feats = load_torch("data/features/signals/speakers.pt")
    with torch.no_grad():
        logits = signals.verification_scores(model.eval().encoder, feats["test"], feats["test_first"],
                                             feats["test_second"]).double().numpy()
    y = feats["test_label"].numpy()
    th = float(np.median(logits))
    assert accuracy_at(logits, y, th) != accuracy_at(logits, y, 0.0)  # the test can tell them apart
    monkeypatch.setattr(signals, "decision_threshold", lambda *_: {
        "threshold_logit": th, "threshold": 1 / (1 + math.exp(-th)), "val_accuracy": None, "val_eer": None})
    m = lab("signals_siamese")  # the same training run (seeded), scored at th
    assert m["test_accuracy"] == accuracy_at(logits, y, th)


def test_validation_speakers_are_whole_training_speakers_with_balanced_pairs():
    u = 4
    train = torch.arange(8 * u, dtype=torch.float32)[:, None, None].expand(-1, 3, 2).contiguous()  # row id
    split = signals.carve_val_speakers(train, u, 3, 4, seed=5)
    assert len(split.val_speakers) == 3 and split.val_speakers == sorted(split.val_speakers)
    val_rows = {int(v) for v in split.val[:, 0, 0]}
    assert val_rows == {s * u + k for s in split.val_speakers for k in range(u)}
    assert val_rows.isdisjoint(int(v) for v in split.train[:, 0, 0]) and len(split.train) == 5 * u
    assert int(split.val_first.max()) < len(split.val) and int(split.val_second.max()) < len(split.val)
    assert split.val_label.mean() == 0.5  # balanced, as the test pairs
    same = (split.val_first // u == split.val_second // u).float()
    assert torch.equal(same, split.val_label)
    assert signals.carve_val_speakers(train, u, 3, 4, seed=5).val_speakers == split.val_speakers
    assert signals.carve_val_speakers(train, u, 0, 4, seed=5).val is None


@pytest.mark.parametrize("n_val", [1, 7])
def test_too_few_or_too_many_validation_speakers_are_refused(n_val):
    with pytest.raises(UserError, match="n_val_speakers' is"):
        signals.carve_val_speakers(torch.zeros(8 * 4, 3, 2), 4, n_val, 4, seed=0)


def test_the_siamese_threshold_comes_from_validation_speakers_not_from_the_test_pairs(lab):
    m = lab("signals_siamese")
    assert m["train_speakers"] == 4 and m["val_speakers"] == 2 and m["test_speakers"] == 3
    assert "validation speakers" in m["selection"] and 0 < m["threshold"] < 1
    assert m["threshold"] == pytest.approx(1 / (1 + math.exp(-m["threshold_logit"])))
    assert m["test_accuracy_at_0_5"] is not None and m["val_accuracy"] is not None
    # the reported accuracy is the saved model's, on the test pairs, at the saved threshold
    ckpt = load_checkpoint("data/models/signals/siamese.pt")
    assert ckpt["threshold_logit"] == m["threshold_logit"]
    model = Siamese(SpeakerEncoder(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    feats = load_torch("data/features/signals/speakers.pt")
    with torch.no_grad():
        logits = signals.verification_scores(model.eval().encoder, feats["test"], feats["test_first"],
                                             feats["test_second"])
    y = feats["test_label"].numpy()
    assert m["test_accuracy"] == accuracy_at(logits.double().numpy(), y, m["threshold_logit"])
    assert m["test_accuracy_at_0_5"] == accuracy_at(torch.sigmoid(logits).numpy(), y, 0.5)
    # scrambled test labels: the same threshold (the test pairs play no part in choosing it)
    feats = load_torch("data/features/signals/speakers.pt")
    feats["test_label"] = 1 - feats["test_label"]
    save_torch(feats, "data/features/signals/speakers.pt")
    assert lab("signals_siamese")["threshold"] == m["threshold"]
    # the course's rule without validation speakers: accept at p >= 0.5
    course = lab("signals_siamese", {"signals.speaker.n_val_speakers": 0})
    assert course["threshold"] == 0.5 and course["test_accuracy"] == course["test_accuracy_at_0_5"]
    assert course["val_accuracy"] is None and course["val_eer"] is None  # the same keys, for dvc metrics diff
    assert course["train_speakers"] == 6 and "p = 0.5" in course["selection"]
