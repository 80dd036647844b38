# pue-monitor: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?=  # empty: 8080, or a free port when 8080 is busy
DATA_DIR ?= pue-data

.PHONY: demo test tools install check-config clean

$(VENV)/.installed: pyproject.toml
	@echo "==> creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "==> installing pue-monitor and its test dependencies (a minute on a fresh machine)"
	$(PY) -m pip install --progress-bar off -e '.[test]' | grep -E '^(Collecting|Successfully|Building)' || true
	$(PY) -c 'import pue_monitor.cli' && echo "==> installed: $(VENV)/bin/pue-monitor"
	touch $@

install: $(VENV)/.installed

## Run the monitor on the built-in simulated province (no hardware needed).
demo: $(VENV)/.installed
	$(VENV)/bin/pue-monitor demo $(if $(PORT),--port $(PORT)) --data-dir $(DATA_DIR)

## Install what the tests need (Python packages, Debian tools) and run every test.
test: $(VENV)/.installed tools
	$(PY) -m pytest

## Debian packages the integration tests talk to (promtool, Chromium, ...).
tools:
	bash .ci/install-tools

check-config: $(VENV)/.installed
	$(VENV)/bin/pue-monitor check-config -c $(or $(CONFIG),config/demo.yaml)

clean:
	rm -rf $(VENV) *.egg-info build .pytest_cache
