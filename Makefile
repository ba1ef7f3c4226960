# Every target sets up what it needs; only Python >= 3.10 and make are assumed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BUGSINK_VENV := .venv-bugsink
BUGSINK_VERSION := 2.6.1
BENCH_VENV := .venv-bench

.PHONY: test lint typecheck unit e2e package-check demo bench bench-smoke clean venv bugsink-venv
.PHONY: redis-server hey
.PHONY: test-matrix test-matrix-django6 test-matrix-django42 test-matrix-py310

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
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: venv
	$(BIN)/mypy --strict src

# The Celery tests run a real redis-server (Debian's package) as their broker.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		$(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends redis-server; }

# Unit and integration tests: in-process, real sockets and loopback servers.
unit: venv redis-server
	$(BIN)/pytest -m "not e2e"

# End-to-end: real subprocesses (opentelemetry-instrument, gunicorn, uvicorn, Celery) and a
# real Bugsink server.
e2e: venv bugsink-venv redis-server
	BUGSINK_VENV=$(abspath $(BUGSINK_VENV)) $(BIN)/pytest -m e2e

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

# The server-under-load benchmark (benchmarks/server_load.py) drives gunicorn with hey, Debian's
# package of the HTTP load generator.
hey:
	@command -v hey >/dev/null 2>&1 || { \
		$(SUDO) apt-get update && \
		$(SUDO) apt-get install -y --no-install-recommends hey; }

bench: $(BENCH_VENV)/.installed hey
	$(BENCH_VENV)/bin/python -m benchmarks

bench-smoke: $(BENCH_VENV)/.installed hey
	BENCH_QUICK=1 $(BENCH_VENV)/bin/python -m benchmarks

test: lint typecheck unit e2e package-check bench-smoke

clean:
	rm -rf $(VENV) $(BUGSINK_VENV) $(BENCH_VENV) dist .mypy_cache .ruff_cache .pytest_cache
	rm -rf $(DJANGO6_VENV) $(DJANGO42_VENV) $(PY310_VENV)

demo: venv bugsink-venv
	BUGSINK_VENV=$(abspath $(BUGSINK_VENV)) $(BIN)/python examples/demo.py

# Compatibility matrix, not part of `make test` (three more venvs, the whole suite in each):
# the newest Django on Python 3.12, the oldest supported one (4.2 LTS) on $(PYTHON), and
# Django 4.2 on the oldest supported Python (3.10). `make unit` covers $(PYTHON) with the
# newest Django that supports it. Each venv pins its Django through a pip constraint;
# Bugsink keeps its own venv.
# The first python3.12 (python3.10) that runs: a pyenv shim on PATH may exist and refuse to.
PYTHON312 ?= $(shell for p in $$(command -v python3.12) $(HOME)/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)
PYTHON310 ?= $(shell for p in $$(command -v python3.10) $(HOME)/.pyenv/versions/3.10*/bin/python3.10; do \
	"$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)
DJANGO6_VENV := .venv-py312-django6
DJANGO42_VENV := .venv-django42
PY310_VENV := .venv-py310-django42

# $(call matrix-venv,venv,python,Django requirement)
define matrix-venv
@test -n "$(2)" || { echo "no Python for $(1): set PYTHON, PYTHON312 or PYTHON310" >&2; exit 1; }
rm -rf $(1)
$(2) -m venv $(1)
$(1)/bin/python -m pip install --quiet --upgrade pip
echo '$(3)' > $(1)/django-constraint.txt
$(1)/bin/python -m pip install --quiet -c $(1)/django-constraint.txt -e '.[dev]'
touch $(1)/.installed
endef

$(DJANGO6_VENV)/.installed: pyproject.toml
	$(call matrix-venv,$(DJANGO6_VENV),$(PYTHON312),Django==6.*)

$(DJANGO42_VENV)/.installed: pyproject.toml
	$(call matrix-venv,$(DJANGO42_VENV),$(PYTHON),Django==4.2.*)

$(PY310_VENV)/.installed: pyproject.toml
	$(call matrix-venv,$(PY310_VENV),$(PYTHON310),Django==4.2.*)

# $(call matrix-run,venv)
define matrix-run
@$(1)/bin/python -c "import sys, django; print('== $(1): Python', sys.version.split()[0], 'Django', django.__version__)"
BUGSINK_VENV=$(abspath $(BUGSINK_VENV)) $(1)/bin/pytest -q -p no:cacheprovider
endef

test-matrix-django6: $(DJANGO6_VENV)/.installed bugsink-venv redis-server
	$(call matrix-run,$(DJANGO6_VENV))

test-matrix-django42: $(DJANGO42_VENV)/.installed bugsink-venv redis-server
	$(call matrix-run,$(DJANGO42_VENV))

test-matrix-py310: $(PY310_VENV)/.installed bugsink-venv redis-server
	$(call matrix-run,$(PY310_VENV))

# `make -k test-matrix` runs every leg even when one fails.
test-matrix: test-matrix-django6 test-matrix-django42 test-matrix-py310
