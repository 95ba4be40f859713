# Everything a fresh machine needs: `make demo` and `make test` each run `setup` first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
# Run as root on Debian/Ubuntu -> libvlfeat-dev is installed for the VLFeat backend;
# elsewhere the OpenCV backend serves and a one-line notice says so.
APT := $(shell command -v apt-get 2>/dev/null)
ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned here only (the package itself declares a range): a local CPU build.
	$(PIP) install -q torch==2.13.0
	# zennit (the DNN LRP reference in tests and benchmarks) without its deps: they would pull torchvision and a second torch
	$(PIP) install -q --no-deps zennit==0.5.1
	# quantus (the oracle of the region perturbation test) likewise: its deps would pull opencv-python, which
	# clashes with opencv-python-headless; it imports only these few beyond what the package needs
	$(PIP) install -q --no-deps quantus==0.6.0
	$(PIP) install -q pandas cachetools
	# virelay (the SpRAy viewer; its project loader reads our export in the tests) likewise: it pins
	# pillow<11; its loader imports only pyyaml, h5py, numpy, pillow and matplotlib beyond itself
	$(PIP) install -q --no-deps virelay==0.6.1
	# corelay (the anchor of the spray benchmark): all its deps are ours but metrohash-python
	$(PIP) install -q --no-deps corelay==1.0.0 metrohash-python
	$(PIP) install -q numpy Cython
	@if [ -n "$(APT)" ] && [ -n "$(ROOT)" ] && ! [ -f /usr/include/vl/dsift.h ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvlfeat-dev) \
		|| echo "notice: libvlfeat-dev could not be installed; the opencv backend will serve"; fi
	@if [ -f /usr/include/vl/dsift.h ]; then \
		$(PIP) install -q --no-build-isolation "cyvlfeat>=0.7" \
		|| echo "notice: cyvlfeat failed to build; the opencv backend will serve"; \
	else echo "notice: VLFeat headers not found; cyvlfeat skipped, the opencv backend will serve"; fi
	# headless Chromium renders the study report in the browser test (required in CI, as VLFeat is)
	@if [ -n "$(APT)" ] && [ -n "$(ROOT)" ] && ! [ -x /usr/bin/chromedriver ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| echo "notice: chromium could not be installed; the report's browser test will be skipped (fails in CI)"; fi
	$(PIP) install -q -e ".[test]"
	touch $(STAMP)

demo: setup
	$(PY) -m bowlrp.cli.demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q -ra

bench: setup
	$(PY) -m benchmarks.run --out benchmarks/results/latest.json

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
