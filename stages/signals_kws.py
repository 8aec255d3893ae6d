"""signals_kws: the lecture's log-mel CNN for 12-class keyword spotting, class-weighted, lr drop; the best
epoch on the validation list is tested."""

from dlsys.core.context import stage_main
from dlsys.tasks import signals

if __name__ == "__main__":
    stage_main("signals_kws", signals.run_kws, __doc__)
