"""signals_kws_features: log-mel features of every Speech Commands clip (10 commands + unknown + background)."""

from dlsys.core.context import stage_main
from dlsys.tasks import signals

if __name__ == "__main__":
    stage_main("signals_kws_features", signals.run_kws_features, __doc__)
