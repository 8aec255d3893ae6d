"""signals_speaker_pairs: STFT magnitudes of every speaker utterance (batched) and the fixed test pairs."""

from dlsys.core.context import stage_main
from dlsys.tasks import signals

if __name__ == "__main__":
    stage_main("signals_speaker_pairs", signals.run_speaker_pairs, __doc__)
