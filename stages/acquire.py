"""acquire_<name>: build data/raw/<name>/ from the configured source (synthetic or real)."""

import argparse
import logging

from dlsys.core import atomic_dir, load_params, write_metrics
from dlsys.core.outputs import PLOTS_ROOT
from dlsys.core.stage import run_stage
from dlsys.data.registry import acquire, get_spec, raw_dir

log = logging.getLogger("dlsys.acquire")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    args = ap.parse_args()
    params = load_params()
    spec = get_spec(args.dataset)  # unknown names fail before any work
    meta = acquire(args.dataset, params, seed=params.int("seed", lo=0))
    write_metrics("data", args.dataset, {k: v for k, v in meta.items() if k not in ("name", "source")},
                  source=meta["source"])
    with atomic_dir(PLOTS_ROOT / "data" / args.dataset) as tmp:
        if spec.preview is not None:
            spec.preview(raw_dir(args.dataset), tmp, meta["source"])


if __name__ == "__main__":
    run_stage(main, "acquire")
