"""cifar_ssl_baseline: the tiny CNN from scratch (He init) on only the last `cifar.ssl.n_labelled` training
images, full batch, Adam; test accuracy every `cifar.ssl.eval_every` epochs, the final epoch's model kept."""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_ssl_baseline", cifar.run_ssl_baseline, __doc__)
