# Two commands do all set-up on a fresh machine:
#   make run    create .venv, install, and run the main job on scenarios.yaml
#   make test   create .venv, install, and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint format clean obd-sample

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# constraints.txt pins torch to the CPU build (a bare `torch` pulls a multi-GB CUDA build)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m abtest run --treatment sass --control mixed --config scenarios.yaml

# The Open Bandit Dataset sample (from the obp wheel on the registry) for tests marked realdata
obd-sample: $(STAMP)
	$(PY) tools/fetch_obd.py --cache .cache

test: $(STAMP) obd-sample
	$(PY) -m pytest

test-all: $(STAMP) obd-sample
	$(PY) -m pytest -m ''

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
