"""generative_imputer λ: a GAN that draws a whole digit around a given centre patch.

Condition = the centre patch x[9:19, 9:19] flattened (100-d) ⊕ 100-d noise → generator; the
discriminator sees full images only. Generator loss = adversarial + λ·MSE(centre patch of the
output, the condition) (pixels in [-1, 1]); λ = 0 lets the generator ignore the patch.

Final-epoch model. Outputs (λ as written on the command line): data/models/generative/imputer_lam<λ>.pt,
metrics/generative/imputer_lam<λ>.json (on the test set: centre-patch MSE in [0, 1] pixel units, and
the fraction of generated digits the MNIST baseline classifies as the ground-truth label),
plots/generative/imputer_lam<λ>/ (training curves, generated digits beside the ground truth).
"""

from dlsys.core.context import stage_main
from dlsys.tasks import generative

if __name__ == "__main__":
    stage_main("generative_imputer", generative.run_imputer, __doc__, variant="lam")
