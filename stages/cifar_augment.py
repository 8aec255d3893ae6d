"""cifar_augment: the seeded validation hold-out carved from the training images, and a check figure of the
four augmented versions (original, brighter, darker, mirrored).

The augmented training set itself (4 × N images) is rebuilt in memory by cifar_train (milliseconds on the
device) instead of being stored: on real data it would be 2.2 GB of float images in the DVC cache for nothing.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_augment", cifar.run_augment, __doc__)
