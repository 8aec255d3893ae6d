"""denoise_features: batched STFT of the HW2 denoising files → data/features/denoise/pair.pt.

The last `denoise.frame.val_seconds` of the training pair are held out (transformed on their own) to choose
the frame denoisers' epoch; test_01's clean reference is used only if it exists.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import denoise

if __name__ == "__main__":
    stage_main("denoise_features", denoise.run_features, __doc__)
