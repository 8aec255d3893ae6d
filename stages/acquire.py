"""acquire_<name>: build data/raw/<name>/ from the configured source (synthetic or real).

Everything is validated (every file read back by the dataset's reader) and previewed (plots/data/<name>/,
audio/data/<name>/) in temporary directories before anything is renamed into place; metrics come last.
"""

import argparse
import sys

from dlsys.core.context import stage_main
from dlsys.tasks import datasets

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):  # --help, or no dataset: argparse explains and exits
        ap = argparse.ArgumentParser(prog="python stages/acquire.py", description=__doc__)
        ap.add_argument("dataset", choices=sorted(datasets.PREVIEWS))
        ap.parse_args(argv)
    stage_main(f"acquire_{argv[0]}", datasets.run_acquire, __doc__, argv=argv[1:])
