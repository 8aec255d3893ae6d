"""dlsys: a reproducible, DVC-orchestrated deep-learning lab."""

__version__ = "0.1.0"
