# Two commands on a fresh clone:  make repro  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# dvc runs stage commands through the shell: make the venv's python the one they find.
export PATH := $(BIN):$(PATH)

.PHONY: install repro repro-real smoke test bench bench-pipeline report compare exp-table clean-venv remote push pull

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt \
	  -c constraints.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

repro: install
	$(BIN)/dvc repro

# Every course setting and every real dataset, as one DVC experiment, on files placed in data/external/
# (README, 'Real data'). First one check names every missing file and its route; no network is used
# unless DOWNLOAD=1 lets the acquisition stages fetch the published archives.
repro-real: install
	$(BIN)/python -m dlsys.data.preflight params-real.yaml $(if $(DOWNLOAD),--download)
	$(BIN)/dvc exp run -n real-data $$($(BIN)/python -m dlsys.core.overlay params-real.yaml)

# Every stage on tiny sizes (params-smoke.yaml) in a throw-away copy of this checkout, in one process in DVC's
# stage order: about two minutes, nothing in the workspace changes.
# make smoke [KEEP=/tmp/smoke to keep the copy and its outputs] [DVC=1: through `dvc repro`, about 8 minutes: 11-12 s of start-up per stage]
smoke: install
	$(BIN)/python -m dlsys.core.smoke $(if $(KEEP),--keep '$(KEEP)') $(if $(DVC),--dvc)

# The suite on every core (pytest-xdist); each test file stays on one worker, so module fixtures are built once.
# make test [TEST_JOBS=0: in this process, one core]
TEST_JOBS ?= auto
test: install
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

# Micro-benchmarks (minutes). The pipeline benchmark re-runs the whole pipeline cold: `make bench-pipeline`.
bench: install
	@for f in bench/bench_*.py; do case $$f in *bench_pipeline.py) continue;; esac; \
	  echo "== $$f"; $(BIN)/python $$f || exit 1; done

bench-pipeline: install
	$(BIN)/python bench/bench_pipeline.py

# What changed between two revisions (either may be `workspace`): a one-screen summary, then only the
# metrics that moved beyond the tolerance, the changed params and the plots whose data changed, drawn
# offline in reports/compare/README.md.  make compare A=HEAD~1 B=workspace [RTOL=0.001 ATOL=1e-6]
A ?= $(or $(REV),HEAD)
B ?= workspace
compare: install
	$(BIN)/python -m dlsys.reporting.compare --a '$(A)' --b '$(B)' --out reports/compare \
	  $(if $(RTOL),--rtol '$(RTOL)') $(if $(ATOL),--atol '$(ATOL)')

# `dvc exp show` for people: only the params and metrics that differ between experiments, no timings, as
# markdown (also saved to reports/experiments.md).  make exp-table [EXP_ARGS="-n 5" | EXP_ARGS=-A]
EXP_ARGS ?=
exp-table: install
	@mkdir -p reports
	$(BIN)/python -m dlsys.reporting.exp_table $(EXP_ARGS) > reports/experiments.md && cat reports/experiments.md

# The results page (metrics, plots, audio players), generated from metrics/ and plots/: reports/index.html.
report: install
	$(BIN)/python -m dlsys.reporting.report --out reports

# A team's shared cache: `make remote REMOTE=/mnt/share/dlsys-cache` (a local or network directory; for S3 use
# s3://bucket/path after `pip install 'dvc-s3'`), then `make push` after a run and `make pull` in another clone:
# the run-cache travels too, so `dvc repro` there re-runs no stage whose code, params and deps match.
REMOTE ?=
remote: install
	@test -n "$(REMOTE)" || { echo "usage: make remote REMOTE=<directory or s3://bucket/path>"; exit 2; }
	$(BIN)/dvc remote add --default --force team "$(REMOTE)"
	@echo "DVC remote 'team' -> $(REMOTE) (written to .dvc/config; commit it to share it, or use --local)"

push: install
	$(BIN)/dvc push --run-cache

pull: install
	$(BIN)/dvc pull --run-cache

clean-venv:
	rm -rf $(VENV)
