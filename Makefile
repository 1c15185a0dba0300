# `make demo` and `make test` work on a fresh machine: each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test check lint venv sysdeps clean

# torch goes first, pinned to the build this machine holds on disk (others are gigabytes).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,postgres]'
	touch $@

venv: $(VENV)/.installed

# Debian packages the suite uses: PostgreSQL (the search test against a real server),
# Chromium and a font (the dashboard screenshot check). Installed when missing (as root or
# with sudo), silent when present; without apt-get it says what to install, and the tests
# that need them skip (outside CI).
SYSDEPS := postgresql chromium fonts-liberation
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
sysdeps:
	@missing=$$(for p in $(SYSDEPS); do \
	    dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "sysdeps: no apt-get; install $$missing yourself"; exit 0; fi; \
	echo "sysdeps: apt-get install" $$missing; \
	$(SUDO) apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null

# The demo study is scratch: each `make demo` starts it afresh.
demo: venv
	rm -rf studies/demo
	$(PY) -m search.run --task demo

lint: venv
	$(VENV)/bin/ruff check .

# The whole suite: what CI runs.
test: lint sysdeps
	$(PY) -m pytest -q --durations=15

# The inner loop: lint, then the tests not marked slow (under a minute on 2 cores).
check: lint
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf studies/*/ .pytest_cache
