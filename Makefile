# Two commands reproduce everything: `make repro` (the pipeline, then README.md's results section from
# metrics/ and plots/) and `make test` (the test suite).
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: make it the virtualenv's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install repro test full bench clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "twostream needs Python >= 3.10, got " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro
	$(BIN)/python scripts/readme_results.py

test: $(STAMP)
	$(BIN)/python -m pytest

# The seed's full setting (real data, ImageNet weights, RAFT-large, 224 px): params-full.yaml
# applied as a DVC experiment. Needs internet, a GPU, ~3 GB of disk for downloads and unar.
full: $(STAMP)
	@command -v unar >/dev/null 2>&1 || command -v unrar >/dev/null 2>&1 || { \
	  echo "error: the HMDB51 archives are RAR: install unar (Debian/Ubuntu: sudo apt-get install unar;" \
	       "macOS: brew install unar) or unrar, then run make full again" >&2; exit 1; }
	@overrides="$$($(BIN)/python -m twostream.params params-full.yaml)" && \
	  echo "dvc exp run $$overrides" && eval "$(BIN)/dvc exp run $$overrides"

bench: $(STAMP)
	$(BIN)/python benchmarks/benchmark.py

clean:
	rm -rf $(VENV) data models
