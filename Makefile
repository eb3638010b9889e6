# Two entry points for a fresh machine (Python 3.11, pip, apt as root):
#   make demo   - the whole product on the local sandbox
#   make test   - the whole test suite (installs MariaDB, PostgreSQL, nginx if missing)
# Also: make prod-local - the production profile on this machine (Ctrl-C stops it)
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test lint install system-deps clean prod-local
# The packages mypy checks: all of Orca's code (the blocks, the emulator and the web app too).
MYPY_PACKAGES := -p orca_flows -p orca_blocks -p orca_emulator -p ui

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/orca demo $(ARGS)

# PostgreSQL + Prefect server, MariaDB, the AWS emulator, 3 workers, orca serve and orca ui.
prod-local: install system-deps
	$(VENV)/bin/python -m orca_flows.local.profile $(ARGS)

system-deps:
	bash scripts/system-deps.sh

# Static checks: lint and format check on the whole tree, types on the engine's core.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_PACKAGES)

# The MariaDB leg, the browser test and the production profile's test fail instead of
# skipping when their servers are missing.
test: lint system-deps
	ORCA_REQUIRE_MYSQL=1 ORCA_REQUIRE_BROWSER=1 ORCA_REQUIRE_PROFILE=1 $(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
