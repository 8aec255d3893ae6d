"""denoise_features_timit: batched STFT of the timit mixtures, sources and noises, and the ideal binary masks
M = 1[|S| > |N|] → data/features/denoise/timit.pt (complex mixtures for v/ and te/, v/ waveforms)."""

from dlsys.core.context import stage_main
from dlsys.tasks import denoise

if __name__ == "__main__":
    stage_main("denoise_features_timit", denoise.run_features_timit, __doc__)
