# pue-monitor: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?=  # empty: 8080, or a free port when 8080 is busy
DATA_DIR ?= pue-data
# What `make install` adds to the application: the test tools and the PDF reports.
EXTRAS ?= test,pdf

.PHONY: demo test tools install check-config clean lock audit

$(VENV)/.installed: pyproject.toml requirements-test.lock
	@echo "==> creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "==> installing pue-monitor and its test dependencies at the locked versions (a minute on a fresh machine)"
	$(PY) -m pip install --progress-bar off -c requirements-test.lock -e '.[$(EXTRAS)]' | grep -E '^(Collecting|Successfully|Building)' || true
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

## Pin every dependency (and theirs) to exact versions: requirements.lock for the
## application (the Docker image), requirements-test.lock with the test tools (make install).
## Run after changing the dependencies in pyproject.toml; commit both files.
lock:
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/python -m pip install --quiet 'pip-tools==7.6.2'
	CUSTOM_COMPILE_COMMAND="make lock" .venv-tools/bin/pip-compile --quiet --strip-extras \
	    --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" .venv-tools/bin/pip-compile --quiet --strip-extras \
	    --extra test --extra pdf --no-emit-index-url --no-emit-find-links \
	    --output-file requirements-test.lock pyproject.toml

## Check both lock files against the OSV vulnerability database (needs it reachable; see
## README, "Dependencies").
audit:
	PUE_MONITOR_AUDIT=osv bash .ci/audit

check-config: $(VENV)/.installed
	$(VENV)/bin/pue-monitor check-config -c $(or $(CONFIG),config/demo.yaml)

clean:
	rm -rf $(VENV) .venv-tools .venv-audit *.egg-info build .pytest_cache
