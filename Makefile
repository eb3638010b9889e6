# Two entry points for a fresh machine (Python 3.11, pip, apt as root):
#   make demo   - the whole product on the local sandbox
#   make test   - the whole test suite (installs MariaDB if it is missing)
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/orca demo $(ARGS)

system-deps:
	bash scripts/system-deps.sh

# The MariaDB leg and the browser test fail instead of skipping when their servers are missing.
test: install system-deps
	ORCA_REQUIRE_MYSQL=1 ORCA_REQUIRE_BROWSER=1 $(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
