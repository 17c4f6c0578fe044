# partx: two commands on a fresh machine.
#   make demo   set up, generate a small JetClass-format dataset, train + evaluate ParT on it
#   make test   set up and run the test suite (what CI runs)
#   make models train the committed checkpoints of models/ on generated data (docs/models.md)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.partx-installed
PYTEST_ARGS ?=
# test processes (pytest-xdist; a test file stays on one worker, so its module fixtures are built once):
# 2 = the CI machine's cores; TEST_WORKERS=0 runs in this process
TEST_WORKERS ?= 2
XDIST  := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

.PHONY: env test test-fast demo bench models models-official clean-env help

help:
	@echo "make env    create $(VENV) and install partx with pinned versions (idempotent)"
	@echo "make test   env + full test suite (what .ci/run calls)"
	@echo "make demo   env + generate data + train/evaluate ParT on it (CPU)"
	@echo "make bench  env + regenerate benchmarks/ (docs/benchmarks.md; ~30 min on 2 cores)"
	@echo "make models env + generate data, train + evaluate the models/ checkpoints, write their cards (docs/models.md)"
	@echo "make models-official  download + verify the official ParT / ParticleNet JetClass weights"

env: $(STAMP)

# Re-installs only when the dependency spec changes; a fresh clone takes ~2 minutes.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[gen,dev]"
	@touch $(STAMP)

test: env
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-fast: env
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q $(XDIST) -m "not slow" $(PYTEST_ARGS)

demo: env
	PYTHON=$(PY) bash scripts/demo.sh

bench: env
	PYTHON=$(PY) bash scripts/bench.sh

# Checkpoints whose card exists are kept (MODELS_ARGS=--force rebuilds; MODELS_ARGS="PFN_gen-small_full" one).
MODELS_ARGS ?=
models: env
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} nice -n 10 $(PY) -m partx.models_store build $(MODELS_ARGS)

models-official: env
	$(PY) get_datasets.py models

clean-env:
	rm -rf $(VENV)
