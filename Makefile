# modeldeploy: the two commands are `make demo` and `make test` (see README.md).
# Everything they install is cached under $(MODELDEPLOY_CACHE) and reused.

SHELL := /bin/bash
export MODELDEPLOY_CACHE ?= $(HOME)/.cache/modeldeploy
SETUP := hack/setup.sh
# The paths setup.sh derives (virtualenvs keyed on pyproject.toml, binaries on go.sum).
ENV := $(shell $(SETUP) env)
env_of = $(patsubst $(1)=%,%,$(filter $(1)=%,$(ENV)))
OPERATOR_PY := $(call env_of,OPERATOR_VENV)/bin/python
MODEL_PY := $(call env_of,MODEL_VENV)/bin/python
# PYTHONPATH pins this clone's code: the cached virtualenvs are shared by every clone on
# the machine, and their editable install points at whichever clone set up last.
RUN := env $(ENV) PATH="$(call env_of,MODELDEPLOY_TOOLS_BIN):$(call env_of,OPERATOR_VENV)/bin:$$PATH" \
	PYTHONPATH="$(CURDIR)/operator:$(CURDIR)/experiments:$(CURDIR)/model_server"
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup demo test soak test-operator test-model-server lint controlplane manifests clean-cache

setup:
	@$(SETUP) all

## The main job: the sandbox demo.
demo: setup
	@$(RUN) $(OPERATOR_PY) -m sandbox.demo $(DEMO_ARGS)

## All tests: lint and types, the operator's suite, then the model server's in its own virtualenv.
test: setup lint
	@$(RUN) $(OPERATOR_PY) -m pytest $(PYTEST_ARGS)
	@$(RUN) $(MODEL_PY) -m pytest model_server/tests $(PYTEST_ARGS)

## The long variants (pytest marker `soak`): the fault campaign's extra seeds and repeats (more
## seeded kills, Prometheus outages at every moment of a step, the bad-traffic soak, A/A canaries),
## the 10,000-request split, scenarios that faster tests also cover. CI runs it after `make test`.
soak: setup
	@$(RUN) $(OPERATOR_PY) -m pytest -m soak $(PYTEST_ARGS)

test-operator: setup
	@$(RUN) $(OPERATOR_PY) -m pytest $(PYTEST_ARGS)

test-model-server: setup
	@$(RUN) $(MODEL_PY) -m pytest model_server/tests $(PYTEST_ARGS)

## ruff and mypy over the operator package (configured in pyproject.toml).
lint: setup
	@$(RUN) $(OPERATOR_PY) -m ruff check operator/modeldeploy
	@$(RUN) $(OPERATOR_PY) -m mypy

## A control plane in the foreground, for people (prints the kubeconfig path).
controlplane: setup
	@$(RUN) $(OPERATOR_PY) -m sandbox.controlplane

clean-cache:
	rm -rf $(MODELDEPLOY_CACHE)

## Re-render manifests/ from the chart (a test fails while they are stale).
manifests: setup
	@$(RUN) hack/render-manifests.sh
