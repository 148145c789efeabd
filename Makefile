# The two set-up commands of the README: `make sim` (the main job) and `make test` (the whole suite).
# Each creates the virtual environment on first use, from pyproject.toml alone.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all env sim test clean

all: test

$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing the pinned dependencies (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[sim,test]'
	@touch $@

env: $(STAMP)

sim: $(STAMP)
	$(VPY) -m virtio_gpio.cli sim

test: $(STAMP)
	$(VPY) -m pytest

clean:
	rm -rf build .pytest_cache .hypothesis
