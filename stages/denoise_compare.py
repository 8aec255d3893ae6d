"""denoise_compare: FC, 1-D CNN, FC mask and RNN side by side (SNR, SNRi), the RNN's gain over the FC mask,
a bar plot, test_01 spectrograms."""

from dlsys.core.context import stage_main
from dlsys.tasks import denoise

if __name__ == "__main__":
    stage_main("denoise_compare", denoise.run_compare, __doc__)
