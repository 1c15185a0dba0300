# `make demo` and `make test` work on a fresh machine: each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test check lint venv clean

# torch goes first, pinned to the build this machine holds on disk (others are gigabytes).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The demo study is scratch: each `make demo` starts it afresh.
demo: venv
	rm -rf studies/demo
	$(PY) -m search.run --task demo

lint: venv
	$(VENV)/bin/ruff check .

# The whole suite: what CI runs.
test: lint
	$(PY) -m pytest -q

# The inner loop: lint, then the tests not marked slow (under a minute on 2 cores).
check: lint
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf studies/*/ .pytest_cache
