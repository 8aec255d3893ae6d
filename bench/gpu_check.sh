#!/usr/bin/env bash
# The GPU check in one command, for a short lease of a CUDA machine (see bench/gpu_check.py):
#   bench/gpu_check.sh [extra gpu_check.py arguments]
# Uses the project's .venv when there is one (make install); otherwise the machine's python3 with the
# wheels in .whl/ installed to /tmp/site first (a GPU machine with no network: carry dvc, soundfile and
# the other pins there as wheels). Writes bench/results/gpu_check.json and stage_times_*_smoke.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
  if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH
  else
    export PYTHONPATH=$PWD/src
  fi
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
exec "$PY" bench/gpu_check.py "$@"
