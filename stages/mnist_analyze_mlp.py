"""mnist_analyze_mlp: what the baseline's layers do, on `mnist.analyze.n_samples` test images.

* top-k grids: per class (highest softmax probability) and per random penultimate unit (images assigned
  to the unit, among the chosen ones, with their largest activation; fewer winners leave empty cells);
* PCA and t-SNE 2-D scatters of the pixels and of every layer's output, with a separability number per
  layer (leave-one-out k-NN accuracy and silhouette in each 2-D embedding, k-NN in the full space).
"""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_analyze_mlp", mnist.run_analyze_mlp, __doc__)
