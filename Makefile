# The two Quickstart commands, and the CI entry point (.ci/run calls `make test`).
#   make demo   a virtualenv, the project installed into it, then `ocsptool demo`
#   make test   test tools, HAProxy and socat (when root), then lint, types, tests, benchmark smoke

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: demo test matrix install-peers lint typecheck pytest benchmark-smoke clean

# The HAProxy versions of the matrix: `make matrix` runs the HAProxy-marked tests against
# each (after `make test` ran everything against the default haproxy). Override with
# `make matrix HAPROXY_VERSIONS="/path/to/haproxy ..."`.
HAPROXY_DIR ?= ../shared/haproxy
HAPROXY_VERSIONS ?= $(HAPROXY_DIR)/2.8.0/haproxy $(HAPROXY_DIR)/3.0.0/haproxy $(HAPROXY_DIR)/3.2.0/haproxy $(HAPROXY_DIR)/3.4.0/haproxy

demo: $(BIN)/python
	$(PIP) install .
	$(BIN)/ocsptool demo

test: $(BIN)/python install-peers
	$(PIP) install -e '.[dev]'
	$(MAKE) --no-print-directory lint typecheck pytest benchmark-smoke

# Debian's python3 needs python3-venv for `-m venv`; install it when root and missing.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ocsptool needs Python 3.11+"'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "$(PYTHON) cannot make a venv: apt-get install python3-venv" >&2; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)

# The HAProxy tests need a real haproxy, the benchmark smoke socat. As root, install
# Debian's when missing; without haproxy the HAProxy tests skip
# (and fail under CI=true, which must prove them).
install-peers:
	@if command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing haproxy (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; \
	else echo "haproxy is not installed: the HAProxy tests will skip (sudo apt-get install haproxy)"; fi
	@if command -v socat >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing socat (apt-get), the benchmark's per-command push reference"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat; \
	else echo "socat is not installed: the benchmark smoke will fail (sudo apt-get install socat)"; fi

matrix: $(BIN)/python
	@for binary in $(HAPROXY_VERSIONS); do \
	  echo "pytest -m haproxy with OCSPTOOL_HAPROXY=$$binary"; \
	  OCSPTOOL_HAPROXY=$$binary $(BIN)/python -m pytest -q -m haproxy || exit 1; \
	done

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest -q

benchmark-smoke:
	@if [ -f benchmarks/__main__.py ]; then \
	  echo "$(BIN)/python -m benchmarks --size 20 --quick"; \
	  $(BIN)/python -m benchmarks --size 20 --quick; \
	fi

clean:
	rm -rf $(VENV) build dist *.egg-info
