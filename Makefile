# Every target sets up what it needs; only Python >= 3.10 and make are assumed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BUGSINK_VENV := .venv-bugsink
BUGSINK_VERSION := 2.6.1
BENCH_VENV := .venv-bench

.PHONY: test lint typecheck unit package-check demo bench bench-smoke clean venv bugsink-venv

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

# Benchmarks run in their own venv so that sentry-sdk (measured side by side) never enters the
# test venv. BENCH_QUICK=1 finishes in under a minute and is part of `make test` as a smoke test.
$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m benchmarks

bench-smoke: $(BENCH_VENV)/.installed
	BENCH_QUICK=1 $(BENCH_VENV)/bin/python -m benchmarks

test: lint typecheck unit package-check bench-smoke

clean:
	rm -rf $(VENV) $(BUGSINK_VENV) $(BENCH_VENV) dist .mypy_cache .ruff_cache .pytest_cache

demo: venv bugsink-venv
	BUGSINK_VENV=$(abspath $(BUGSINK_VENV)) $(BIN)/python examples/demo.py
