"""The stage context: what every stage needs before it can work, built once by `stage_main`.

A stage script is a docstring and one call:

    stage_main("mnist_train_mlp", mnist.run_train_mlp, __doc__)

`stage_main` parses the command line (`--help` describes the stage from dvc.yaml and runs nothing), sets up
logging with the stage's name, reads params, chooses the device, seeds every generator, calls the task
with a `StageContext`, records the wall time under `timings/` (not a metric), and turns expected problems
into one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from dlsys.core.device import device_from_params
from dlsys.core.errors import UserError
from dlsys.core.outputs import (
    METRICS_ROOT,
    PLOTS_ROOT,
    AUDIO_ROOT,
    atomic_dir,
    save_torch,
    write_metrics,
    write_timings,
)
from dlsys.core.params import Params, load_params
from dlsys.core.seed import seed_everything
from dlsys.core.stage import record_timing

log = logging.getLogger("dlsys")

RAW_ROOT = Path("data/raw")
MODELS_ROOT = Path("data/models")
FEATURES_ROOT = Path("data/features")
DVC_YAML = Path("dvc.yaml")
# OS errors a user can fix (disk full, permissions, read-only disk, quota): one line, not a traceback.
THREADS_ENV = "DLSYS_THREADS"
_USER_OS_ERRORS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT}


def split_stage_name(stage: str) -> tuple[str, str]:
    """'mnist_train_mlp' → ('mnist', 'train_mlp'); data stages 'acquire_<name>' → ('data', '<name>')."""
    family, _, step = stage.partition("_")
    if not step:
        raise ValueError(f"stage name {stage!r} is not <family>_<step>")
    return ("data", step) if family == "acquire" else (family, step)


def dataset_source(name: str, raw_root: Path = RAW_ROOT) -> dict:
    """What data/raw/<name>/dataset.json says about where the data came from (source, corpus)."""
    path = raw_root / name / "dataset.json"
    if not path.exists():
        raise UserError(f"{path.parent}: dataset not found; run `dvc repro acquire_{name}` first")
    try:
        meta = json.loads(path.read_text())
        source = meta["source"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: unreadable (truncated or edited?); re-create it with "
                        f"`dvc repro -f acquire_{name}`") from None
    info = {"source": "real" if source == "real" else "synthetic"}
    if meta.get("corpus"):
        info["corpus"] = meta["corpus"]
    return info


@dataclass
class StageContext:
    """Params, device, seeded generator, data source and output paths of one stage run."""

    stage: str
    params: Params
    device: torch.device
    generator: torch.Generator
    seed: int
    variant: str | None = None
    step: str = ""
    family: str = ""
    datasets: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        family, step = split_stage_name(self.stage)
        self.family = self.family or family
        if not self.step:
            self.step = f"{step}_{self.variant}" if self.variant is not None else step

    # ---------------------------------------------------------------- data source
    def use_data(self, *names: str) -> str:
        """Declare the datasets this stage reads; returns the data source its metrics will record."""
        for name in names:
            self.datasets[name] = dataset_source(name)
        return self.source

    @property
    def source(self) -> str:
        """'real' only when every dataset the stage read is real."""
        if not self.datasets:
            raise RuntimeError("call ctx.use_data(<dataset>, ...) before asking for the data source")
        return "real" if all(d["source"] == "real" for d in self.datasets.values()) else "synthetic"

    # ---------------------------------------------------------------- output paths
    @property
    def metrics_path(self) -> Path:
        return METRICS_ROOT / self.family / f"{self.step}.json"

    @property
    def plots_dir(self) -> Path:
        return PLOTS_ROOT / self.family / self.step

    @property
    def audio_dir(self) -> Path:
        return AUDIO_ROOT / self.family / self.step

    def model_path(self, name: str) -> Path:
        return MODELS_ROOT / self.family / name

    def features_path(self, name: str) -> Path:
        return FEATURES_ROOT / self.family / name

    # ---------------------------------------------------------------- writers
    def write_metrics(self, metrics: Mapping[str, Any], selection: str | None = None) -> Path:
        """The stage's metrics file: its numbers, the data they come from, and how the model was chosen."""
        extra: dict[str, Any] = {}
        if selection is not None:
            extra["selection"] = selection
        if len(self.datasets) > 1 or any("corpus" in d for d in self.datasets.values()):
            extra["datasets"] = self.datasets
        return write_metrics(self.family, self.step, {**metrics, **extra}, self.source)

    def time(self, **seconds: float) -> None:
        """Record timings (seconds, samples/s); written to timings/<family>/<step>.json at the end."""
        self.timings.update(seconds)

    @contextlib.contextmanager
    def plots(self) -> Iterator[Path]:
        """A fresh plots/<family>/<step>/ that replaces the old one only if the block succeeds."""
        with atomic_dir(self.plots_dir) as tmp:
            yield tmp

    @contextlib.contextmanager
    def audio(self) -> Iterator[Path]:
        """audio/<family>/<step>/: listening examples live outside plots/ (DVC plots cannot hold audio)."""
        with atomic_dir(self.audio_dir) as tmp:
            yield tmp

    def save_checkpoint(self, path: str | Path, model: torch.nn.Module, config: Mapping[str, Any],
                        extra: Mapping[str, Any] | None = None) -> bool:
        """Save weights with the config that rebuilds the model. Non-finite weights are saved marked
        `diverged` (downstream stages refuse them with one line) and False is returned."""
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        finite = all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
        if not finite:
            log.warning("%s: the model has non-finite weights (diverged); saved marked as diverged", path)
        save_torch({"config": dict(config), "state_dict": state, "diverged": not finite,
                    "stage": self.stage, **(extra or {})}, path)
        return finite


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by `save_checkpoint`; refuses one whose training diverged."""
    from dlsys.core.outputs import load_torch

    ckpt = load_torch(path)
    if isinstance(ckpt, dict) and ckpt.get("diverged"):
        stage = ckpt.get("stage", "the stage that wrote it")
        raise UserError(f"{path}: this model diverged during training (non-finite weights); "
                        f"change its params (e.g. a smaller lr) and re-run {stage}")
    return ckpt


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# -------------------------------------------------------------------- the command line

class _StageFormatter(logging.Formatter):
    def __init__(self, stage: str):
        super().__init__("%(asctime)s " + stage + " %(levelname)s %(message)s", datefmt="%H:%M:%S")


def setup_logging(stage: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StageFormatter(stage))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def describe_stage(script: str, dvc_yaml: Path = DVC_YAML) -> str:
    """What dvc.yaml says about the stage(s) a script runs: params keys, inputs, outputs."""
    import yaml

    if not dvc_yaml.exists():
        return "(dvc.yaml not found: run from the repository root to see params, inputs and outputs)"
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    lines = []
    for name, st in stages.items():
        body = st.get("do", st)
        if script not in str(body.get("cmd", "")):
            continue
        variants = st.get("foreach") or st.get("matrix")
        lines.append(f"dvc stage {name}" + (f" (variants: {variants})" if variants else "") + ":")
        lines.append(f"  command: {body.get('cmd')}")
        for key, title in (("params", "params keys"), ("deps", "inputs"), ("outs", "outputs")):
            items = [next(iter(x)) if isinstance(x, dict) else str(x) for x in body.get(key, [])]
            if items:
                lines.append(f"  {title}: " + ", ".join(items))
    return "\n".join(lines) or f"(no stage in {dvc_yaml} runs {script})"


def parse_args(stage: str, doc: str | None, argv: Sequence[str] | None, variant: str | None,
               choices: Sequence[str] | None) -> argparse.Namespace:
    script = Path(sys.argv[0]).as_posix()
    script = script[script.index("stages/"):] if "stages/" in script else f"stages/{stage}.py"
    ap = argparse.ArgumentParser(
        prog=f"python {script}", description=(doc or stage).strip(),
        epilog=describe_stage(script) + "\n\nRun it through DVC (`dvc repro <stage>`) so its outputs are "
        "tracked; params come from params.yaml.", formatter_class=argparse.RawDescriptionHelpFormatter)
    if variant is not None:
        ap.add_argument(variant, choices=list(choices) if choices else None, help=f"the {variant} to run")
    return ap.parse_args(argv)  # unknown arguments: argparse prints usage and exits 2


def stage_main(stage: str, run: Callable[[StageContext], Any], doc: str | None = None, *,
               variant: str | None = None, choices: Sequence[str] | None = None,
               argv: Sequence[str] | None = None) -> None:
    """Parse, set up, run the task with its context, record the time; one line for expected errors."""
    args = parse_args(stage, doc, argv, variant, choices)
    value = getattr(args, variant) if variant is not None else None
    label = stage if value is None else f"{stage}@{value}"
    setup_logging(label)
    t0 = time.perf_counter()
    ctx: StageContext | None = None
    try:
        set_threads(os.environ.get(THREADS_ENV))
        params = load_params()
        seed = params.int("seed", lo=0, hi=2**63 - 1)
        ctx = StageContext(stage=stage, params=params, device=device_from_params(params),
                           generator=seed_everything(seed), seed=seed, variant=value)
        run(ctx)
    except UserError as exc:
        _fail(label, str(exc))
    except OSError as exc:
        if exc.errno not in _USER_OS_ERRORS:
            raise
        _fail(label, f"{exc.filename or ''}: {exc.strerror}".lstrip(": "))
    except KeyboardInterrupt:
        print(f"{label} interrupted: no partial outputs were kept", file=sys.stderr)
        sys.exit(130)
    seconds = time.perf_counter() - t0
    ctx.timings["stage_seconds"] = round(seconds, 2)
    device = {"device": ctx.device.type}
    if ctx.device.type == "cuda":
        device["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**20, 1)
        ctx.timings.update(device)
    write_timings(ctx.family, ctx.step, ctx.timings)
    record_timing(label, seconds, device)
    log.info("finished in %.1f s", seconds)


def set_threads(value: str | None) -> None:
    """DLSYS_THREADS=n caps torch's CPU threads, so parallel queue workers (`dvc queue start -j 2`) do not
    fight over the cores. An environment setting, not a param. It changes speed and, in the last bits, what
    is computed: sums split over another number of threads round differently, and training can drift from
    there (the HAR CNN: 88.89 % at 1 thread, 89.17 % at 2), so byte-identical outputs need the same n."""
    if not value:
        return
    try:
        n = int(value)
    except ValueError:
        raise UserError(f"{THREADS_ENV} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise UserError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
    torch.set_num_threads(n)
    log.info("torch threads: %d (%s)", n, THREADS_ENV)


def _fail(label: str, message: str) -> None:
    hint = recovery_hint(label)
    print(f"error: {message}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    sys.exit(2)


def recovery_hint(label: str, dvc_yaml: Path = DVC_YAML) -> str:
    """If DVC removed this stage's outputs before the failed run, say how to get the last good ones back."""
    import yaml

    if not dvc_yaml.exists():
        return ""
    try:
        stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    except yaml.YAMLError:
        return ""
    st = stages.get(label.split("@")[0])
    if st is None or "do" in st or "foreach" in st or "matrix" in st:
        return ""
    cached, committed = [], []
    for out in st.get("outs", []):
        path, opts = (next(iter(out.items())) if isinstance(out, dict) else (str(out), {}))
        (committed if (opts or {}).get("cache") is False else cached).append(path)
    if all(Path(o).exists() for o in cached + committed):
        return ""
    steps = [f"`dvc checkout {label}`"] if cached else []
    if committed:
        steps.append("`git checkout -- " + " ".join(committed) + "`")
    return "DVC removed its previous outputs; restore the last good ones with " + " and ".join(steps)
