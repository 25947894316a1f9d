# hf-drop: `make demo` runs the main job, `make test` runs the tests; each creates .venv first.
# (A user who only prunes needs none of this: `pip install .` is the core, without torch; see
# docs/install.md.)
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install data test test-fast hooks lint format docs demo bench bench-prune bench-probe bench-import bench-stream bench-groups clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch and torchvision first, pinned: these builds lie on this machine's disk for Python 3.11
	# (a plain torch requirement would pull a CUDA build of several GB)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	# every extra: probe, train, plots, docs, test
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

install: $(STAMP)

# Real Fashion-MNIST (70,000 images) from Debian's package; the tests read it.
data: $(FASHION_MNIST)
$(FASHION_MNIST):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq dataset-fashion-mnist

test: $(STAMP) $(FASHION_MNIST)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -n auto  # one worker per core (pytest-xdist)

# The tests that take under about 5 s each (no probe, training, accelerate or real Fashion-MNIST):
# under a minute, no data to install.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -n auto

# ruff before each commit (.pre-commit-config.yaml; the hooks run the venv's ruff)
hooks: $(STAMP)
	$(VENV)/bin/pre-commit install

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# The documentation site (mkdocs-material + mkdocstrings) into site/; --strict: a warning fails it.
docs: $(STAMP)  # the docs extra comes with make install ('.[all]')
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

demo: $(STAMP)
	$(PY) recipes/demo_digits.py --output outputs/demo

bench: bench-prune bench-probe bench-import

bench-prune: $(STAMP)
	$(PY) benchmarks/prune_speed.py --output benchmarks/results/prune_speed.jsonl

bench-probe: $(STAMP) $(FASHION_MNIST)
	$(PY) benchmarks/probe_overhead.py --output benchmarks/results/probe_overhead.jsonl

bench-import: $(STAMP)
	cd benchmarks && ../$(PY) import_time.py --output results/import_time.jsonl

bench-stream: $(STAMP)
	cd benchmarks && ../$(PY) stream_scale.py --output results/stream_scale.jsonl

# Group robustness on a Waterbirds-like Fashion-MNIST (about 30 minutes; resumable). One thread:
# the small CNN gains nothing from two, and two threads on a busy 2-core machine crawl.
bench-groups: $(STAMP) $(FASHION_MNIST)
	OMP_NUM_THREADS=1 $(PY) recipes/groups.py --output benchmarks/results/groups

clean:
	rm -rf $(VENV) outputs site .pytest_cache .ruff_cache .hypothesis
