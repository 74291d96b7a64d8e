# The two Quickstart commands, and the CI entry point (.ci/run calls `make test`).
#   make demo   a virtualenv, the project installed into it, then `ocsptool demo`
#   make test   test tools, HAProxy and socat (when root), then lint, types, tests, benchmark smoke

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: demo test matrix oldest install-peers lint typecheck pytest benchmark-smoke clean

# The HAProxy version matrix: `make test` runs everything against Debian's haproxy, then
# `make matrix` runs the HAProxy-marked tests again against every other binary: each
# ../shared/haproxy/*/haproxy (found by glob, so a version added there is tested with no
# change here), or the ones you name: `make matrix HAPROXY_VERSIONS="/opt/haproxy-3.4/haproxy"`.
# Under CI=true an empty matrix, or a binary that does not run, fails.
HAPROXY_DIR ?= ../shared/haproxy
HAPROXY_VERSIONS ?= $(sort $(wildcard $(HAPROXY_DIR)/*/haproxy))
export HAPROXY_VERSIONS

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
	@if [ -z "$(strip $(HAPROXY_VERSIONS))" ]; then \
	  echo "make matrix: no haproxy binary in $(HAPROXY_DIR)/*/haproxy and no HAPROXY_VERSIONS"; \
	  if [ "$$CI" = true ]; then exit 1; fi; \
	fi
	@for binary in $(HAPROXY_VERSIONS); do \
	  version=$$("$$binary" -v 2>/dev/null | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p'); \
	  if [ -z "$$version" ]; then echo "make matrix: $$binary does not run"; exit 1; fi; \
	  echo "HAProxy $$version ($$binary): pytest -m haproxy"; \
	  OCSPTOOL_HAPROXY=$$binary $(BIN)/python -m pytest -q -m haproxy || exit 1; \
	done

# The oldest dependencies pyproject.toml declares: each `>=` bound of the dependencies and
# of the redis, kubernetes and nginx extras, pinned with `==` (.ci/oldest-constraints, read
# from pyproject.toml each time, so it follows the declarations), in a venv of their own,
# then the whole suite once (about 4 minutes). CI runs it after `make test`.
OLDEST_VENV ?= .venv-oldest
oldest:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ocsptool needs Python 3.11+"'
	rm -rf $(OLDEST_VENV)
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(PYTHON) .ci/oldest-constraints > $(OLDEST_VENV)/constraints.txt
	$(OLDEST_VENV)/bin/python -m pip --disable-pip-version-check --quiet install \
	  --constraint $(OLDEST_VENV)/constraints.txt -e '.[test,redis,kubernetes,nginx]'
	$(OLDEST_VENV)/bin/python .ci/oldest-constraints --check
	$(OLDEST_VENV)/bin/python -m pytest -q

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
	rm -rf $(VENV) $(OLDEST_VENV) build dist *.egg-info
