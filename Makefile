# Every target sets itself up on a fresh machine: `make test` is all a new checkout needs.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS := redis,postgres,otel,observe,balance,shop,loadtest,capacity,bench,dev
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: test test-fast lint typecheck promtool browser haproxy bench install clean demo \
	stack stack-down stack-status

# The install step reruns only when pyproject.toml changes (the stamp carries its hash).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]' 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -c "import tailguard, redis, sqlalchemy, pytest, hypothesis, tenacity, alembic, jwt, argon2"
	@touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/tailguard src/shop src/lab tests/typing

# promtool checks the generated SLO rules (tests/integration/test_slo_promtool.py).
promtool:
	bash .ci/install-promtool

# Debian's chromium, for the HTML report test (tests/integration/test_report_browser.py).
browser:
	@test -x /usr/bin/chromium || { \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's HAProxy 2.6, for the stack (`make stack`, tests/shop/stack/).
haproxy:
	@test -x /usr/sbin/haproxy || { \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; }

test: lint typecheck promtool browser haproxy
	$(BIN)/pytest

test-fast: lint typecheck promtool browser haproxy
	$(BIN)/pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The main job: the shop under the guide's load, each practice against its naive twin.
demo: $(STAMP)
	$(BIN)/tailguard demo $(DEMO_ARGS)

# The shop stack on loopback: HAProxy before N shop instances, the worker and the simulators,
# run by supervisord on the local PostgreSQL and Redis. State, logs and URLs in $(STACK_DIR).
# make stack STACK_ARGS="--instances 4 --balance leastconn --weights 3,1,1,1"
STACK_DIR ?= out/stack
STACK_ARGS ?=
stack: $(STAMP) haproxy
	$(BIN)/python -m shop.deploy up --state-dir $(STACK_DIR) $(STACK_ARGS)

# Stops what `make stack` started, by pid: supervisord shuts down, then any pid left is killed.
stack-down:
	$(BIN)/python -m shop.deploy down --state-dir $(STACK_DIR)

stack-status:
	$(BIN)/python -m shop.deploy status --state-dir $(STACK_DIR)
