"""denoise_frame: an FC or 1-D CNN frame denoiser on the HW2 files (`python stages/denoise_frame.py fc|cnn1d`).

Trains on noisy → clean magnitude columns, keeps the epoch with the best SNR on the held-out tail of the
training pair, reports test_01's SNR when its clean reference exists (a test number, never used to choose),
and writes the denoised test_01 / test_02 to audio/denoise/<model>/.
"""

from dlsys.core.context import stage_main
from dlsys.tasks import denoise

if __name__ == "__main__":
    stage_main("denoise_frame", denoise.run_frame, __doc__, variant="model", choices=denoise.FRAME_MODELS)
