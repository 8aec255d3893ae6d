"""mnist_compress_svd: SVD once per W1…W5 of the baseline; test accuracy and exact parameter count for
each rank D in mnist.svd.ranks ("full" = min(m, n) per layer)."""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_compress_svd", mnist.run_compress_svd, __doc__)
