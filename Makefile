# Two commands reproduce everything: `make repro` (the pipeline) and `make test` (the test suite).
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: make it the virtualenv's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install repro test bench clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "twostream needs Python >= 3.10, got " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data models
