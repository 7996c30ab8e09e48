# Two entry points: `make bench` (set up, run the default suite) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
# A pinned torch installs the CPU build from local disk on our machines; elsewhere pip resolves it
# normally. Override with `make TORCH=torch` to take whatever your index serves.
TORCH ?= torch==2.13.0
RESULTS ?= results/default
# Parallel fits; each fit uses one thread, so results do not depend on JOBS.
JOBS ?= 2
BIN := $(VENV)/bin

.PHONY: setup bench report test benchmark leaderboard clean

setup: $(VENV)/.installed

# pip byte-compiles every module it installs (a third of the set-up, most of it torch's and scipy's
# modules no run imports); --no-compile, then one import of what a run uses writes exactly that
# bytecode (also where PYTHONDONTWRITEBYTECODE is set, which would leave every process compiling).
PIP := $(BIN)/pip install -q --no-compile
WARM := PYTHONDONTWRITEBYTECODE= $(BIN)/python -c

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)" || $(PIP) torch
	$(PIP) -e ".[test,plots]"
	$(WARM) "import structure_bench as sb, structure_bench.cli, structure_bench.report.html, matplotlib.backends.backend_agg, PIL.WebPImagePlugin; sb.default_suite(); sb.list_methods()"
	touch $@

# --plots also saves each config's codes and writes $(RESULTS)/report.html (figures).
bench: setup
	$(BIN)/structure-bench run --plots --jobs $(JOBS) --out $(RESULTS)

report: setup
	$(BIN)/structure-bench report --jobs $(JOBS) $(RESULTS)

# The tests also cover the optional Ray executor and SAELens adapter, so they get those extras.
$(VENV)/.test-extras: $(VENV)/.installed
	$(PIP) -e ".[ray,saelens]"
	$(WARM) "import pytest, pytest_benchmark, ray, sae_lens"
	touch $@

test: $(VENV)/.test-extras
	@$(BIN)/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Run every built-in baseline on the default suite with 3 seeds, submit each, verify it on hidden
# instances, regenerate leaderboard/; `structure-bench leaderboard --check` checks it. METHODS="a b"
# redoes only those baselines (after a change to them), keeping the other submissions.
leaderboard: setup
	$(BIN)/python -m structure_bench.leaderboard.baselines --out results/leaderboard --board leaderboard --jobs 2 $(if $(METHODS),--methods $(METHODS))

# Timings (tests/benchmarks, the slow whole-suite run included): benchmarks.json and benchmarks.md.
benchmark: setup
	$(BIN)/pip install -q -e ".[saelens]" || echo "SAELens not installed: its comparison is skipped" >&2
	$(BIN)/pytest tests/benchmarks -m "slow or not slow" --benchmark-enable --benchmark-only --benchmark-json=benchmarks.json -q
	$(BIN)/python tests/benchmarks/summary.py benchmarks.json | tee benchmarks.md

clean:
	rm -rf $(VENV) results .pytest_cache .benchmarks
