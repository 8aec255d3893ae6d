"""signals_har: the lecture's dense net or 1-D CNN on WISDM accelerometer windows, subject-disjoint test
(final-epoch model)."""

from dlsys.core.context import stage_main
from dlsys.tasks import signals

if __name__ == "__main__":
    stage_main("signals_har", signals.run_har, __doc__, variant="model", choices=signals.HAR_MODELS)
