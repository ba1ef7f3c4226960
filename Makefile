# Every target sets up what it needs; only Python >= 3.10 and make are assumed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BUGSINK_VENV := .venv-bugsink
BUGSINK_VERSION := 2.6.1

.PHONY: test lint typecheck unit package-check demo bench clean venv bugsink-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Bugsink (a real Sentry-compatible server) pins its own Django: keep it in its own venv.
bugsink-venv: $(BUGSINK_VENV)/.installed

$(BUGSINK_VENV)/.installed:
	$(PYTHON) -m venv $(BUGSINK_VENV)
	$(BUGSINK_VENV)/bin/python -m pip install --quiet bugsink==$(BUGSINK_VERSION)
	touch $@

lint: venv
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

typecheck: venv
	$(BIN)/mypy --strict src

unit: venv bugsink-venv
	BUGSINK_VENV=$(abspath $(BUGSINK_VENV)) $(BIN)/pytest

package-check: venv
	rm -rf dist .venv-wheelcheck
	$(BIN)/python -m build --quiet --outdir dist . >/dev/null
	$(PYTHON) -m venv .venv-wheelcheck
	.venv-wheelcheck/bin/python -m pip install --quiet dist/*.whl
	cd / && $(abspath .venv-wheelcheck)/bin/python -c "import otel_sentry_bridge as m; print('wheel imports:', m.__version__)"
	rm -rf .venv-wheelcheck

test: lint typecheck unit package-check

clean:
	rm -rf $(VENV) $(BUGSINK_VENV) dist .mypy_cache .ruff_cache .pytest_cache

demo: venv bugsink-venv
	BUGSINK_VENV=$(abspath $(BUGSINK_VENV)) $(BIN)/python examples/demo.py
