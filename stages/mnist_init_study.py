"""mnist_init_study <optimizer>: 5×512 FC net, five activation/init setups, one optimizer (sgd | adam).

One DVC matrix entry per optimizer; each writes one plot overlaying the five training-loss curves and
states per setup whether it learns, stalls, overfits or diverges (mnist.run_state). A run whose
loss becomes NaN/inf is recorded as diverged (metrics and plot), never a crash.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_init_study", mnist.run_init_study, __doc__, variant="optimizer", choices=mnist.INIT_OPTIMIZERS)
