# tinysense entry points. On a fresh Debian machine:
#   make demo    build the host firmware and run the demo on bundled data
#   make test    build everything and run the whole test suite
#
# Other targets: host (build the host firmware variants), bench, lint, firmware BOARD=…, clean, distclean.

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
HOST_VARIANTS := standard 32 sanitize
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

BOARD ?= generic-s3

.PHONY: all deps host test bench demo lint clean distclean firmware

all: host

# System packages (apt as root; a printed command otherwise), then the venv.
deps: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml tools/ensure_system_deps.sh
	@tools/ensure_system_deps.sh
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	@touch $@

host: deps
	@for v in $(HOST_VARIANTS); do \
		$(MAKE) --no-print-directory -C ports/host -j$(JOBS) VARIANT=$$v PYTHON=$(abspath $(VPY)) || exit 1; \
	done

test: host
	$(VPY) -m pytest -q tests

bench: host
	$(VPY) -m pip install --quiet -e '.[dev,bench]'
	$(VPY) bench/run.py

demo: host
	$(VPY) examples/demo.py

# ESP32-S3 image in Docker (needs a Docker engine): dist/$(BOARD)/firmware.bin
firmware: deps
	$(VENV)/bin/tinysense build $(BOARD)

lint: deps
	$(VENV)/bin/ruff check tools tests bench examples

clean:
	rm -rf build

distclean: clean
	rm -rf .cache $(VENV)
