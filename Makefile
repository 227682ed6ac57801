# binmon: every set-up step lives here. `make run` and `make test` start from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k codec"`.
PYTEST_ARGS ?=

CHART_LIB := resources/chart/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js

.PHONY: venv chart-lib run demo test lint typecheck unit integration bench clean

venv: $(STAMP)

# Lightweight Charts from npm, pinned by resources/chart/package-lock.json; the page
# loads it from local files (no CDN, no network at run time).
chart-lib: $(CHART_LIB)

$(CHART_LIB): resources/chart/package.json resources/chart/package-lock.json
	npm ci --prefix resources/chart --no-audit --no-fund --loglevel=error
	test -f $@ && touch $@

# The venv is rebuilt from the lock file whenever the lock or pyproject changes.
$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The main job: the desktop app, live from Binance. `make demo` runs it against the
# embedded simulator (no network needed).
run: venv chart-lib
	$(VENV)/bin/binmon

demo: venv chart-lib
	$(VENV)/bin/binmon --demo

lint: venv
	$(PY) -m ruff check binmon tests benchmarks
	$(PY) -m ruff format --check binmon tests benchmarks

typecheck: venv
	$(PY) -m mypy

# The whole suite, headless. GUI tests (pytest-qt, the real QtWebEngine page) run offscreen.
test: lint typecheck chart-lib
	QT_QPA_PLATFORM=offscreen QTWEBENGINE_DISABLE_SANDBOX=1 $(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv chart-lib
	$(PY) benchmarks/codec_decode.py
	$(PY) benchmarks/ingest.py
	setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice $(PY) benchmarks/chart_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
