# binmon: every set-up step lives here. `make run` and `make test` start from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k codec"`.
PYTEST_ARGS ?=

CHART_LIB := resources/chart/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js

.PHONY: venv chart-lib run demo test lint typecheck unit integration bench clean \
	bundle package package-test icons

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

# ---- Packaging (issue 8): PyInstaller bundle, portable tarball, Debian package -------------
# `make package` -> dist/binmon/ (onedir bundle), dist/binmon-<version>-linux-x86_64.tar.gz and
# dist/binmon_<version>-<revision>_amd64.deb. Needs binutils (strip), patchelf, dpkg-deb and,
# with Debian's Python, libpython3.11 (.ci/run installs them for `make package-test`).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
DEB_REVISION ?= 1
# xz -0: ~180 MB in ~20 s here; gzip -9 (dpkg's default) ~100 s, xz -6 ~450 s; zstd is fastest
# (~3 s) but bookworm's lintian rejects zstd members (malformed-deb-archive).
DEB_COMPRESS ?= xz
DEB_LEVEL ?= 0
TARBALL := dist/binmon-$(VERSION)-linux-x86_64.tar.gz
DEB := dist/binmon_$(VERSION)-$(DEB_REVISION)_amd64.deb
SMOKE_SHOT ?= dist/smoke-installed.png
# "sudo" when not root (.ci/run sets it), to install the .deb.
SUDO ?=
# Reproducible archive dates: the last commit's time (passed to the packaging commands only:
# exported, it would also change how pip byte-compiles the venv).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)

# The onedir bundle, always rebuilt (~40-60 s), then stripped and its RPATHs made relative.
bundle: venv chart-lib
	rm -rf dist/binmon
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller binmon.spec
	$(PY) tools/tidy_bundle.py dist/binmon
	@du -sh dist/binmon

package: bundle
	rm -f $(TARBALL) dist/binmon_*.deb
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH) \
	  --transform 's,^binmon,binmon-$(VERSION),' --use-compress-program='gzip -3 -n' \
	  -cf $(TARBALL) -C dist binmon
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(PY) tools/make_deb.py --bundle dist/binmon --out dist \
	  --revision $(DEB_REVISION) \
	  --compress $(DEB_COMPRESS) --level $(DEB_LEVEL)
	@ls -l $(TARBALL) $(DEB)

# CI's packaging step (after `make test`): build, lint, install the .deb with apt (so its
# Depends are resolved), run the INSTALLED app's smoke test headless and check its screenshot.
package-test: package
	lintian --fail-on error $(DEB)
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ./$(DEB)
	rm -f $(SMOKE_SHOT)
	QT_QPA_PLATFORM=offscreen QTWEBENGINE_DISABLE_SANDBOX=1 timeout 90 /usr/bin/binmon --smoke-test --screenshot $(SMOKE_SHOT)
	python3 tools/check_screenshot.py $(SMOKE_SHOT)

# Re-render the committed PNG icons after editing resources/icons/binmon.svg.
icons: venv
	QT_QPA_PLATFORM=offscreen $(PY) tools/render_icons.py

