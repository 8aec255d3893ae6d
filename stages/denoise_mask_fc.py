"""denoise_mask_fc: the recurrent denoiser's baseline, a per-frame FC ideal-binary-mask model.

Trained on the same timit tr/ features with the same IBM target, masked BCE and input transform as
denoise_rnn, and kept at its best epoch by mean SNR over the same v/; each frame sees ±context
neighbours. denoise_compare reports the RNN's gain over it: what the recurrent memory buys.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import denoise

if __name__ == "__main__":
    stage_main("denoise_mask_fc", denoise.run_mask_fc, __doc__)
