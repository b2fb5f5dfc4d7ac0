# Two commands reproduce everything: `make repro` (the pipeline, then README.md's results section from
# metrics/ and plots/) and `make test` (the inner loop: the unit tests and one tiny end-to-end `dvc repro`).
# `make test-all` runs every test: it adds the slow ones (`-m slow`: DVC end to end, scale-out, training
# stages, the GPU check's smoke run) and the full setting's dry run (`-m fullsetting`). CI (.ci/run) runs it.
# All create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: make it the virtualenv's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install repro test test-all push full dryrun realsize bench gpu-check gpu-wheels clean

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
	$(BIN)/python -m pytest -m "(not slow and not fullsetting) or e2e"

test-all: $(STAMP)
	$(BIN)/python -m pytest

# The workspace's outputs, the run-cache and the outputs of every run in it, to the DVC remote
# (REMOTE=name for another than the default): see docs/reproducibility.md.
push: $(STAMP)
	$(BIN)/python scripts/push_run_cache.py $(if $(REMOTE),-r $(REMOTE))

# The seed's full setting (real data, ImageNet weights, RAFT-large, 224 px): params-full.yaml
# applied as a DVC experiment. Needs internet, a GPU, ~3 GB of disk for downloads and unar.
full: $(STAMP)
	@command -v unar >/dev/null 2>&1 || command -v unrar >/dev/null 2>&1 || { \
	  echo "error: the HMDB51 archives are RAR: install unar (Debian/Ubuntu: sudo apt-get install unar;" \
	       "macOS: brew install unar) or unrar, then run make full again" >&2; exit 1; }
	@overrides="$$($(BIN)/python -m twostream.params params-full.yaml)" && \
	  echo "dvc exp run $$overrides" && eval "$(BIN)/dvc exp run $$overrides"

# The full setting's dry run (params-full.yaml, then params-dryrun.yaml: smallest synthetic data,
# one epoch, random stand-in weights in a temporary TORCH_HOME), in a temporary copy of the repository.
dryrun: $(STAMP)
	$(BIN)/python -m pytest -m fullsetting -s

# The full setting on synthetic data at the real sizes (params-full.yaml, then params-realsize.yaml),
# offline: times every stage (table at the end, log in realsize.log). Weights: the real ones where
# cached in TORCH_HOME, else random stand-ins in $(STANDIN_HOME) (git-ignored; the log says so).
STANDIN_HOME := .torch-standins
realsize: $(STAMP)
	@torch_home="$$($(BIN)/python -m twostream.weights $(STANDIN_HOME))" && \
	  overrides="$$($(BIN)/python -m twostream.params params-full.yaml params-realsize.yaml)" && \
	  echo "TORCH_HOME=$$torch_home dvc exp run $$overrides" && \
	  eval "TORCH_HOME=$$torch_home $(BIN)/python scripts/stage_times.py --log realsize.log $(BIN)/dvc exp run $$overrides"

bench: $(STAMP)
	$(BIN)/python benchmarks/benchmark.py

# The GPU check (docs/performance.md): on a GPU machine with torch and torchvision preinstalled and no
# network, measures the full setting in <= 8 minutes into $(GPU_CHECK_OUT)/gpu_check.{json,txt,log}.
# It installs what the machine lacks from $(WHEELS)/, which `make gpu-wheels` fills where the package
# index is reachable (Python 3.12 manylinux x86_64 wheels of benchmarks/gpu_wheels.txt, <= 60 MiB).
# Neither needs .venv: GPU_PYTHON is the machine's interpreter with torch.
GPU_PYTHON ?= python3
GPU_CHECK_OUT ?= gpu-check
WHEELS := .whl
WHEEL_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64
PIP_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	PYTHON=$(GPU_PYTHON) benchmarks/gpu_check.sh --out $(GPU_CHECK_OUT)

gpu-wheels:
	rm -rf $(WHEELS) && mkdir -p $(WHEELS)
	$(PIP_PYTHON) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
	  --python-version 3.12 --implementation cp $(addprefix --platform ,$(WHEEL_PLATFORMS)) \
	  -d $(WHEELS) -r benchmarks/gpu_wheels.txt
	$(PIP_PYTHON) benchmarks/gpu_check.py --check-wheels --wheels $(WHEELS)

clean:
	rm -rf $(VENV) data models
