"""mnist_svd_in_loop: fine-tune the baseline with the rank-D projection of W1…W5 in every forward pass
(warm-started subspace iteration per matrix per step), straight-through in the backward pass.

The epoch time against a plain (dense) epoch of the same model, optimizer and batches is measured in
the same run and written to timings/mnist/svd_in_loop.json (a timing, not a metric).
"""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_svd_in_loop", mnist.run_svd_in_loop, __doc__)
