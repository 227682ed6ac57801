# binmon: every set-up step lives here. `make run` and `make test` start from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k codec"`.
PYTEST_ARGS ?=

.PHONY: venv run demo test lint typecheck unit integration bench clean

venv: $(STAMP)

# The venv is rebuilt from the lock file whenever the lock or pyproject changes.
$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The main job. Until the desktop window lands this streams live 1m candles from Binance;
# `make demo` does the same against the embedded simulator (no network needed).
run: venv
	$(VENV)/bin/binmon stream BTCUSDT --interval 1m

demo: venv
	$(VENV)/bin/binmon stream BTCUSDT --interval 1m --demo

lint: venv
	$(PY) -m ruff check binmon tests benchmarks
	$(PY) -m ruff format --check binmon tests benchmarks

typecheck: venv
	$(PY) -m mypy

# The whole suite, headless. GUI tests (pytest-qt) run offscreen.
test: lint typecheck
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(PY) benchmarks/codec_decode.py
	$(PY) benchmarks/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
