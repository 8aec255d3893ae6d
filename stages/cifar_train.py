"""cifar_train@{baseline,augmented}: the tiny CNN on the original or the 4× augmented training images, same
settings; the best epoch on the validation hold-out is kept and tested once."""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_train", cifar.run_train, __doc__, variant="variant", choices=cifar.TRAIN_VARIANTS)
