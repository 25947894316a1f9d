# hf-drop: `make demo` runs the main job, `make test` runs the tests; each creates .venv first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint format demo bench clean

$(STAMP): pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	# torch and torchvision first, pinned: these builds lie on this machine's disk for Python 3.11
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

demo: $(STAMP)
	$(PY) recipes/demo_digits.py --output outputs/demo

bench: $(STAMP)
	$(PY) benchmarks/prune_speed.py --output benchmarks/results/prune_speed.jsonl

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache .hypothesis
