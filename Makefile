# dicom-transfer: `make demo` runs the local stack for real; `make test` runs every test tier.
# Both set up what they need on a fresh clone: the virtualenv with the locked packages
# (requirements/lock.txt) and the locked Pulumi CLI (built once from the Go module proxy into
# ~/.cache/dicom-transfer). `make test` also needs the gcloud CLI (see the `gcloud` target).
#
# The library declares ranges (pyproject.toml); the exact versions of our own runs come from
# two lock files, compiled by `make lock` (tools/lock/lock.sh, uv pip compile):
#   requirements/lock.txt            -> .venv             the newest versions (make lock-upgrade)
#   requirements/lock-sdk-lowest.txt -> .venv-sdk-lowest  the library's lower bounds
# `make test` runs the whole suite in .venv and the SDK-matrix subset (TEST_LOWEST) in
# .venv-sdk-lowest: the two ends of the supported pulumi range.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LOWEST_VENV := .venv-sdk-lowest
LOCK_VENV := .venv-lock
PY := $(VENV)/bin/python
PIP_VERSION := 25.3
UV_VERSION := 0.13.9
PYTEST_ARGS ?=
LINT_PATHS := components tests examples benchmarks scripts tools __main__.py
# The lowest SDK runs the tiers that exercise the SDK (resources, providers, the provider
# process) and real-engine tests: more than four transfers served by one provider process, a
# program on the native provider (whose interface, pulumi.provider.experimental, is the SDK's),
# and one on the generated Python SDK (sdk/python).
TEST_LOWEST := tests/unit tests/providers tests/components tests/integration \
  tests/e2e/test_dicom_concurrency_e2e.py::test_sixteen_imports_take_about_as_long_as_one \
  tests/e2e/test_native_python_e2e.py tests/e2e/test_sdk_python_e2e.py

# activate VENV: the environment of a command as if VENV were activated, so that the Pulumi
# plugins the tests start (tools/pulumi_host/plugins) run the same interpreter as the tests.
activate = VIRTUAL_ENV="$(CURDIR)/$(1)" PATH="$(CURDIR)/$(1)/bin:$$PATH"

.PHONY: setup setup-lowest pulumi-cli pulumi-yaml gcloud demo test test-newest test-lowest lint typecheck \
  lock lock-upgrade bench clean sdkgen sdks sdk-nodejs sdk-deps

# install-venv VENV LOCK: a virtualenv holding exactly LOCK (editable installs of our three
# distributions included), checked with `pip check`.
define install-venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make: Python >= 3.11 is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==$(PIP_VERSION)"
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -r $(2)
	$(1)/bin/python -m pip check
	touch $(1)/.installed
endef

$(VENV)/.installed: requirements/lock.txt pyproject.toml components/emulator/pyproject.toml \
    tools/pulumi_host/pyproject.toml sdk/python/setup.py
	$(call install-venv,$(VENV),requirements/lock.txt)

$(LOWEST_VENV)/.installed: requirements/lock-sdk-lowest.txt pyproject.toml \
    components/emulator/pyproject.toml tools/pulumi_host/pyproject.toml sdk/python/setup.py
	$(call install-venv,$(LOWEST_VENV),requirements/lock-sdk-lowest.txt)

$(LOCK_VENV)/.installed:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  "uv==$(UV_VERSION)" "packaging==26.0"
	touch $@

setup: $(VENV)/.installed pulumi-cli

setup-lowest: $(LOWEST_VENV)/.installed pulumi-cli

pulumi-cli:
	@tools/pulumi_host/install-pulumi-cli.sh >/dev/null

# Pulumi's YAML language host, built once beside the cached CLI: the e2e tests of the native
# provider run a YAML program (examples/yaml).
pulumi-yaml: pulumi-cli
	@tools/pulumi_host/install-pulumi-yaml.sh >/dev/null

# Other languages. tools/sdkgen (Pulumi's code generators, built once into the cache beside the
# CLI) writes sdk/nodejs, sdk/python and sdk/go from schema.json; the SDKs are committed and a test
# fails when they differ from a fresh `make sdks`. `sdk-deps` installs what the TypeScript and Go
# tests need: the Node.js SDK built with tsc (sdk/nodejs/bin, from its package-lock.json), the
# TypeScript example's node_modules (npm ci from its lock file, the SDK included) and the Go
# example's modules (Go module proxy), built once to fill Go's build cache (-trimpath, as our Go
# language host builds programs and as the CLI was built, whose cached packages it reuses).
NPM_CI := npm ci --no-audit --no-fund --loglevel=error
NODE_SDK_SOURCES := $(wildcard sdk/nodejs/*.ts sdk/nodejs/*/*.ts) sdk/nodejs/package.json \
  sdk/nodejs/package-lock.json sdk/nodejs/tsconfig.json sdk/nodejs/README.md

sdkgen:
	@tools/sdkgen/build.sh >/dev/null

sdks:
	"$$(tools/sdkgen/build.sh)" -schema schema.json -out sdk -readmes tools/sdkgen/readme

sdk-nodejs: sdk/nodejs/bin/package.json

sdk/nodejs/bin/package.json: $(NODE_SDK_SOURCES)
	@command -v npm >/dev/null || { echo "make: npm (Node.js 20+) is needed for the TypeScript SDK"; exit 1; }
	cd sdk/nodejs && $(NPM_CI) && npx tsc
	cp sdk/nodejs/package.json sdk/nodejs/README.md sdk/nodejs/bin/

examples/typescript/node_modules/.installed: examples/typescript/package-lock.json \
    examples/typescript/package.json sdk/nodejs/bin/package.json
	cd examples/typescript && $(NPM_CI)
	touch $@

examples/go/.built: examples/go/go.mod examples/go/go.sum examples/go/main.go $(wildcard sdk/go/*/*.go)
	@command -v go >/dev/null || { echo "make: Go 1.25+ is needed for the Go SDK"; exit 1; }
	cd examples/go && go build -trimpath -o /dev/null .
	cd tests/e2e/programs/hello-go && go build -trimpath -o /dev/null .
	touch $@

sdk-deps: sdkgen examples/typescript/node_modules/.installed examples/go/.built

# The emulator tests drive the real gcloud CLI against the emulator (tests/emulator,
# tests/bench); it is a system tool, not a Python package.
gcloud:
	@command -v gcloud >/dev/null 2>&1 || { \
	  echo "make: the gcloud CLI (Google Cloud CLI) is needed by make test (the emulator tests"; \
	  echo "drive it against the emulator) and is not on PATH. It is not on PyPI nor in Debian's"; \
	  echo "own archive: install Google's package, e.g. on Debian/Ubuntu add Google's apt"; \
	  echo "repository and 'apt-get install google-cloud-cli', or unpack Google's archive and"; \
	  echo "put its bin/ on PATH (https://cloud.google.com/sdk/docs/install). No account or"; \
	  echo "login is needed: the tests point it at the local emulator."; \
	  exit 1; }

demo: setup
	$(PY) scripts/demo.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# The newest leg needs the lowest venv too: the benchmark smoke test (tests/bench) runs P2 on
# both ends of the SDK matrix.
test-newest: setup setup-lowest gcloud pulumi-yaml sdk-deps
	$(call activate,$(VENV)) $(VENV)/bin/pytest $(PYTEST_ARGS)

test-lowest: setup-lowest sdk-deps
	@echo "make: SDK matrix, lowest leg: $$($(LOWEST_VENV)/bin/python -m pip list --disable-pip-version-check 2>/dev/null | grep -E '^pulumi ' | tr -s ' ')"
	$(call activate,$(LOWEST_VENV)) $(LOWEST_VENV)/bin/pytest $(PYTEST_ARGS) $(TEST_LOWEST)

test: gcloud lint typecheck test-newest test-lowest

lock: $(LOCK_VENV)/.installed
	LOCK_VENV=$(LOCK_VENV) tools/lock/lock.sh

lock-upgrade: $(LOCK_VENV)/.installed
	LOCK_VENV=$(LOCK_VENV) tools/lock/lock.sh --upgrade

bench: setup setup-lowest
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(LOWEST_VENV) $(LOCK_VENV) .pulumi-state .emulator-data .pytest_cache \
	  .mypy_cache .ruff_cache sdk/nodejs/node_modules sdk/nodejs/bin \
	  examples/typescript/node_modules examples/go/.built
