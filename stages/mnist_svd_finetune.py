"""mnist_svd_finetune: W1…W5 as two trainable factors W = U Vᵀ (D = mnist.svd.rank), initialised from the
SVD, checked against the sweep's rank-D network, then fine-tuned; lr and hidden dropout are chosen on validation
images carved from the training set, and the chosen setting is retrained on all of it."""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_svd_finetune", mnist.run_svd_finetune, __doc__)
