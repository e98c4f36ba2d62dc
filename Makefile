# kto-plugin: everything is installed by `make`, nothing by hand.
#   make quickstart   make .venv, install, train KTO on the embedded defaults, print the margins
#   make test         make .venv if missing, install, run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin

export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export AXOLOTL_DO_NOT_TRACK := 1
export DO_NOT_TRACK := 1

.PHONY: install quickstart test clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the CPU build on this machine's disk, before anything asks for a CUDA one
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,deepspeed]"
	touch $@

install: $(VENV)/.installed

quickstart: install
	axolotl kto make-tiny-model
	axolotl train yaml_examples/quickstart.yaml
	axolotl kto summary outputs/quickstart

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf outputs .pytest_cache
