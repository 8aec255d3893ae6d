"""signals_siamese: Siamese GRU speaker verification on STFT pairs; accuracy at 0.5, EER and ROC AUC."""

import logging
import time

import numpy as np
import torch

from dlsys.core import load_params, load_torch, device_from_params, save_torch, seed_everything, write_metrics
from dlsys.core import write_table_csv
from dlsys.core.outputs import PLOTS_ROOT, atomic_dir
from dlsys.core.stage import run_stage
from dlsys.evaluation.verification import accuracy_at, equal_error_rate, roc_auc, roc_curve
from dlsys.features.pairs import PairBatches
from dlsys.models.siamese import Siamese, SpeakerEncoder
from dlsys.plots import new_figure, save_figure, titled
from dlsys.training import fit

log = logging.getLogger("dlsys.signals_siamese")
FAMILY, STEP = "signals", "siamese"


def main() -> None:
    cpu0 = time.process_time()
    p = load_params()
    s = p.sub("speaker")
    device = device_from_params(p)
    seed = p.int("seed", lo=0)
    seed_everything(seed)
    feats = load_torch("data/features/signals/speakers.pt")
    source, u = feats["source"], int(feats["utterances_per_speaker"])
    train, test = feats["train"].to(device), feats["test"].to(device)
    first, second = feats["test_first"].to(device), feats["test_second"].to(device)
    label = feats["test_label"].to(device)

    encoder = SpeakerEncoder(train.shape[1], s.int("hidden", lo=1), s.int("layers", lo=1),
                             s.int("embedding", lo=1), s.float("dropout", lo=0, hi=1))
    encoder.set_normalisation(train.cpu())
    model = Siamese(encoder).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=s.float("lr", lo=0))
    bce = torch.nn.BCEWithLogitsLoss()
    batches = PairBatches(len(train) // u, u, s.int("pairs_per_speaker", lo=1), seed=seed, device=device)

    def loss_fn(m, batch):
        return bce(m.score_pairs(train, batch[0], batch[1]), batch[2])

    def test_scores(m) -> torch.Tensor:
        emb = m.encoder(test)  # each test utterance once
        return (emb[first] * emb[second]).sum(1)

    def evaluate(m, _epoch) -> dict:
        logits = test_scores(m)
        prob, y = torch.sigmoid(logits).cpu().numpy(), label.cpu().numpy()
        return {"test_loss": float(bce(logits, label)), "test_accuracy": accuracy_at(prob, y, 0.5),
                "test_eer": equal_error_rate(prob, y)}

    hist = fit(model, opt, batches, loss_fn, s.int("epochs", lo=1), evaluate=evaluate, desc="siamese",
               grad_clip=s.float("grad_clip", lo=0))
    model.eval()
    with torch.no_grad():
        logits = test_scores(model)
    prob, y = torch.sigmoid(logits).cpu().numpy(), label.cpu().numpy()
    fpr, tpr, _ = roc_curve(prob, y)
    metrics = {
        "test_accuracy": accuracy_at(prob, y, 0.5), "eer": equal_error_rate(prob, y), "roc_auc": roc_auc(prob, y),
        "test_pairs": int(len(y)), "train_speakers": len(train) // u, "test_speakers": len(test) // u,
        "epochs_run": hist.epochs_run, "diverged": hist.diverged,
        "train_seconds": round(hist.seconds, 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
        "device": device.type,
    }
    save_torch({"state_dict": model.state_dict()}, f"data/models/{FAMILY}/siamese.pt")
    with atomic_dir(PLOTS_ROOT / FAMILY / STEP) as out:
        write_table_csv(out / "curves.csv", hist.rows)
        write_table_csv(out / "roc.csv", [{"fpr": a, "tpr": b} for a, b in zip(fpr.tolist(), tpr.tolist())])
        fig, axes = new_figure(ncols=3, size=(14, 3.8))
        ep = [r["epoch"] for r in hist.rows]
        ax = axes[0, 0]
        ax.plot(ep, [r["train_loss"] for r in hist.rows], label="train")
        ax.plot(ep, [r.get("test_loss") for r in hist.rows], label="test")
        ax.plot(ep, [r.get("test_accuracy") for r in hist.rows], label="test accuracy")
        ax.set_xlabel("epoch"), ax.legend()
        ax = axes[0, 1]
        ax.plot(fpr, tpr), ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false acceptance rate"), ax.set_ylabel("true acceptance rate")
        ax.set_title(f"ROC (AUC {metrics['roc_auc']:.3f}, EER {metrics['eer']:.3f})")
        ax = axes[0, 2]
        bins = np.linspace(0, 1, 31)
        ax.hist(prob[y == 1], bins=bins, alpha=0.6, label="same speaker")
        ax.hist(prob[y == 0], bins=bins, alpha=0.6, label="different speakers")
        ax.axvline(0.5, color="k", lw=0.8), ax.set_xlabel("sigmoid score"), ax.legend()
        fig.suptitle(titled(f"Siamese GRU speaker verification: test accuracy {metrics['test_accuracy']:.3f}",
                            source))
        save_figure(fig, out / "verification.png")
    write_metrics(FAMILY, STEP, metrics, source)
    log.info("siamese: test accuracy %.3f, EER %.3f, AUC %.3f, %.0f CPU s", metrics["test_accuracy"],
             metrics["eer"], metrics["roc_auc"], metrics["cpu_seconds"])


if __name__ == "__main__":
    run_stage(main, "signals_siamese")
