"""cifar_augment_report: baseline vs augmented training curves on one figure, and the validation gain."""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_augment_report", cifar.run_augment_report, __doc__)
