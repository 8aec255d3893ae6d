"""denoise_rnn: GRU/LSTM ideal-binary-mask denoiser on the timit mixtures.

Trains on (optionally truncated) padded sequences with a masked BCE loss, keeps the epoch with the best mean
SNR over v/ (Ŝ = M̂ ⊙ X, inverse STFT), and denoises every te/ mixture into data/outputs/denoise/rnn/te/
plus te.zip (what the course asks to submit).
"""

from dlsys.core.context import stage_main
from dlsys.tasks import denoise

if __name__ == "__main__":
    stage_main("denoise_rnn", denoise.run_rnn, __doc__)
