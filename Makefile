# kto-plugin: everything is installed by `make`, nothing by hand.
#   make quickstart              make the venv, install, warm up the embedded model, train KTO on it, print before/after
#   make test                    make the venv if missing, install, run the whole test suite
#   make test-fast               the fast tier: every test that starts no `axolotl` process (a few minutes)
#   make PYTHON=python3.12 test  the same on another supported Python (its own venv)
#   make bench                   time the plugin's KTO beside Axolotl's built-in KTO and SFT (bench/, ~25 min)
#   make bench-alignment         KTO vs DPO vs SFT (and KTO with few desirable rows / noisy labels) on held-out questions
#   make browser                 Debian's chromium for the studio's browser tests (apt-get; `make test` runs it)
#
# The stack follows the Python: the newest Axolotl that Python supports, pinned by
# constraints/pyXY.txt (py311: Axolotl 0.19.0; py312: Axolotl 0.21.0). Each stack has its own
# venv, .venv-pyXY; `.venv` links to the one installed last, so `source .venv/bin/activate` works.
PYTHON ?= python3
PYTHON_BIN := $(shell tools/find_python.sh $(PYTHON))
ifeq ($(PYTHON_BIN),)
$(error no working Python for PYTHON=$(PYTHON): see the message above)
endif
PY_TAG := $(shell $(PYTHON_BIN) -c 'import sys; print("py%d%d" % sys.version_info[:2])')
CONSTRAINTS := constraints/$(PY_TAG).txt
ifeq ($(wildcard $(CONSTRAINTS)),)
$(error $(PYTHON_BIN) ($(PY_TAG)) has no supported stack: there is no $(CONSTRAINTS). Supported: $(notdir $(basename $(wildcard constraints/py*.txt))); pick one with PYTHON=python3.11 or PYTHON=python3.12)
endif
VENV ?= .venv-$(PY_TAG)
BIN := $(abspath $(VENV))/bin

export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export AXOLOTL_DO_NOT_TRACK := 1
export DO_NOT_TRACK := 1

.PHONY: install browser quickstart test test-fast bench bench-alignment stack clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON_BIN) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, at the stack's pinned version: on Python 3.11 the CPU build on this machine's
	# disk, before anything asks for a CUDA one; on 3.12 PyPI's build (a CUDA one, runs on CPU too)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) torch
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,deepspeed]"
	touch $@

install: $(VENV)/.installed
	@# `.venv` -> the stack installed last (an older real .venv folder, from before stacks, is replaced)
	@if [ -d .venv ] && [ ! -L .venv ]; then rm -rf .venv; fi
	@ln -sfn $(VENV) .venv
	@$(BIN)/python -c 'import sys, axolotl, trl, transformers, torch; print(f"stack $(PY_TAG): Python {sys.version.split()[0]}, Axolotl {axolotl.__version__}, TRL {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__} in $(VENV)")'

# The studio's tests drive a real browser through Playwright, pointed at Debian's chromium
# (Playwright's own browser download is not reachable from this project's machines).
# Without root or apt-get this says so, and those tests skip (CI makes a skip a failure).
browser:
	@if command -v chromium >/dev/null 2>&1; then \
	  :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the studio's browser tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the studio's browser tests (sudo apt-get)"; \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "no chromium and no apt-get to install it: the studio's browser tests will skip" \
	       "(install chromium, or point KTO_PLUGIN_CHROMIUM at a Chromium binary)"; \
	fi

stack:
	@echo "$(PY_TAG) $(PYTHON_BIN) $(CONSTRAINTS) $(VENV)"

quickstart: install
	axolotl kto make-tiny-model --warm-up
	axolotl train yaml_examples/quickstart.yaml
	axolotl kto summary outputs/quickstart
	axolotl kto before-after yaml_examples/quickstart.yaml

test: install browser
	$(BIN)/python -m pytest

test-fast: install browser
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.speed $(BENCH_ARGS)

bench-alignment: install
	$(BIN)/python -m bench.alignment $(BENCH_ARGS)

clean:
	rm -rf outputs .pytest_cache
