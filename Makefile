# dicom-transfer: `make demo` runs the local stack for real; `make test` runs every test tier.
# Both set up what they need on a fresh clone: the virtualenv with pinned packages and the
# pinned Pulumi CLI (built once from the Go module proxy into ~/.cache/dicom-transfer).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup pulumi-cli demo test lint typecheck unit emulator-tests providers-tests e2e bench clean

$(STAMP): pyproject.toml components/emulator/pyproject.toml tools/pulumi_host/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make: Python >= 3.11 is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]" \
	  -e "components/emulator[clients]" -e tools/pulumi_host
	touch $@

setup: $(STAMP) pulumi-cli

pulumi-cli:
	@tools/pulumi_host/install-pulumi-cli.sh >/dev/null

demo: setup
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check components tests examples benchmarks scripts tools __main__.py
	$(VENV)/bin/ruff format --check components tests examples benchmarks scripts tools __main__.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: setup lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pulumi-state .emulator-data .pytest_cache .mypy_cache .ruff_cache
