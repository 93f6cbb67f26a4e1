# Wangge: the two commands of the README quick start are `make run` and `make test`.
# Both set up everything they need and are idempotent (a second run skips what is done).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=

.PHONY: run test test-pg test-bundle setup system-deps assets lint bench clean bundle install-offline

run: setup
	$(BIN)/wangge demo --if-missing
	$(BIN)/wangge plans partition --if-none --name 示例方案 --user planner
	$(BIN)/wangge register demo --publish
	$(BIN)/wangge incidents demo
	$(BIN)/wangge patrol demo
	$(BIN)/wangge serve --host $(HOST) --port $(PORT)

test: setup system-deps
	$(BIN)/ruff check geo webmap api tests bench data
	$(BIN)/mypy
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)
	PYTHON=$(BIN)/python bash scripts/pg-test.sh -n 2 $(PYTEST_ARGS)

# The offline bundle built, installed with the network denied and served (make test runs it too).
test-bundle: setup system-deps
	$(BIN)/pytest tests/test_bundle.py -v

# The suite once more against a throwaway PostgreSQL + PostGIS (make test runs both).
test-pg: setup system-deps
	PYTHON=$(BIN)/python bash scripts/pg-test.sh -n 2 $(PYTEST_ARGS)

setup: $(VENV)/.stamp-install assets

$(VENV)/.stamp-install: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

assets: $(VENV)/.stamp-install
	$(BIN)/python -m webmap.assets

system-deps:
	bash scripts/system-deps.sh

lint: setup
	$(BIN)/ruff check geo webmap api tests bench data

# Offline install (docs/DEPLOY.md): one archive with every wheel, the built JS/CSS and the
# Debian package list; install it where there is no network with `make install-offline`.
bundle: setup
	$(BIN)/python scripts/bundle.py --out dist

install-offline:
	@test -n "$(BUNDLE)" || { echo "usage: make install-offline BUNDLE=dist/wangge-bundle-....tar [VENV=.venv]" >&2; exit 2; }
	rm -rf .bundle && mkdir -p .bundle && tar -xf "$(BUNDLE)" -C .bundle
	sh .bundle/*/install.sh $(VENV)
	@echo "then: $(VENV)/bin/wangge demo && $(VENV)/bin/wangge plans partition --if-none --user planner && $(VENV)/bin/wangge serve --prod"

bench: setup
	$(BIN)/python -m pip install -q -e '.[bench]'

clean:
	rm -rf $(VENV) webmap/static/vendor webmap/assets/node_modules dist .bundle
