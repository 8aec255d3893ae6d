"""The one training loop every stage uses (see loop.py)."""

from dlsys.training.loop import EpochLog, EpochTensors, TensorBatches, fit, train_epoch

__all__ = ["EpochLog", "EpochTensors", "TensorBatches", "fit", "train_epoch"]
