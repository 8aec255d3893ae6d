"""cifar_ssl_transfer: as cifar_ssl_baseline, but starting from every pretext weight except the head (a new
He-initialised 10-way head); the transferred layers learn at `cifar.ssl.lr_transferred`, the head at
`cifar.ssl.lr`. Also draws both runs on one figure."""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_ssl_transfer", cifar.run_ssl_transfer, __doc__)
