"""mnist_train_mlp: the 784→1024×5→10 baseline (params mnist.mlp, mnist.train); per-epoch curves; saves
data/models/mnist/mlp.pt, the classifier every later mnist stage and the generative family read.

A diverging run (NaN/inf loss) is recorded in its metrics and curves, and its model is saved marked
diverged so that no later stage uses it as good.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_train_mlp", mnist.run_train_mlp, __doc__)
