"""cifar_pretext: the tiny CNN with a 3-way head learns the rotation pretext on the unlabelled images.

Every training image but the last `cifar.ssl.n_labelled` (labels ignored) appears upright (0), upside down
(1) and rotated 90° counter-clockwise (2). The final epoch's model is kept; pretext accuracy is measured on
the test images' rotations.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import cifar

if __name__ == "__main__":
    stage_main("cifar_pretext", cifar.run_pretext, __doc__)
