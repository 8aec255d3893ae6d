"""cifar_ssl_transfer: as cifar_ssl_baseline, but starting from the pretext model's `cifar.ssl.transfer_layers`
(the course: every layer but the head); those learn at `cifar.ssl.lr_transferred`, the freshly He-initialised
rest (the 10-way head, and any layer not transferred) at `cifar.ssl.lr`. Also draws both runs on one figure."""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_ssl_transfer", cifar.run_ssl_transfer, __doc__)
