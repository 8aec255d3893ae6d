"""generative_vae: a K-unit VAE on the rotated sevens, latent traversals, and which unit encodes rotation.

Loss = BCE + KL (both logged per epoch); final-epoch model. Outputs: data/models/generative/vae.pt,
metrics/generative/vae.json (BCE and KL, the latent dimension whose mean has the largest |Spearman ρ|
with the rotation angle on the test sevens, and the best plane of two), plots/generative/vae/ (loss
curves, one traversal figure per dimension and a combined one, latent mean vs angle). Angles: the
synthetic sidecar's true rotation; for real data the rotation recovered from each seven's MNIST source at
acquire, else each image's principal-axis angle from its pixel moments.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import generative

if __name__ == "__main__":
    stage_main("generative_vae", generative.run_vae, __doc__)
