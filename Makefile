# Two commands on a fresh clone:  make repro  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# dvc runs stage commands through the shell: make the venv's python the one they find.
export PATH := $(BIN):$(PATH)

.PHONY: install repro repro-real test bench bench-pipeline report compare exp-table clean-venv

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt \
	  -c constraints.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

repro: install
	$(BIN)/dvc repro

# Every course ("seed") setting and every real dataset, as one DVC experiment (needs the real data: README).
repro-real: install
	$(BIN)/dvc exp run -n real-data $$($(BIN)/python -m dlsys.core.overlay params-real.yaml)

test: install
	$(BIN)/python -m pytest -q

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

clean-venv:
	rm -rf $(VENV)
