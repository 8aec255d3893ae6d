"""signals_siamese: Siamese GRU speaker verification on STFT pairs; accuracy at 0.5, EER and ROC AUC on
pairs of unseen test speakers (final-epoch model)."""

from dlsys.core.context import stage_main
from dlsys.tasks import signals

if __name__ == "__main__":
    stage_main("signals_siamese", signals.run_siamese, __doc__)
