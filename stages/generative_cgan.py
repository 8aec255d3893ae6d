"""generative_cgan: a conditional GAN on MNIST (noise ⊕ one-hot label), scored by the MNIST baseline.

Generator 110 → 200 → 400 → 784 (ReLU, tanh); discriminator 794 → 400 → 200 → 100 → 1 (dropout,
logistic output). Each step: B real images with their one-hots and B class-balanced fakes with the
one-hots that generated them, pixels in [-1, 1]. With `generative.cgan.mismatch_weight` > 0 the
discriminator is also shown the B reals with a wrong one-hot as fakes (matching-aware discriminator,
Reed et al. 2016): without it the generator learnt to draw digits but largely ignored the label (65%
class consistency after 100 epochs); with it, it must draw the digit it was asked for.

Final-epoch model. Outputs: data/models/generative/cgan.pt, metrics/generative/cgan.json (the fraction
of generated digits the MNIST baseline classifies as their conditioning label, overall and per class),
plots/generative/cgan/ (losses, discriminator accuracy and class consistency per epoch, the 10×10 grid,
the per-class table).
"""

from dlsys.core.context import stage_main
from dlsys.tasks import generative

if __name__ == "__main__":
    stage_main("generative_cgan", generative.run_cgan, __doc__)
