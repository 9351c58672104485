# One command from a fresh clone: `make report` (set-up + the whole pipeline) or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup system-deps report test bench pull restore-times clean

setup: $(STAMP) system-deps

# Pinned Python dependencies (constraints.txt). torch: where a GPU answers (`nvidia-smi -L` succeeds) a CUDA build,
# `torch===VERSION` from the package index (PyPI's Linux wheel is built for CUDA; `===` refuses a local `+cpu`
# wheel, which `==` would take), checked with torch.version.cuda; elsewhere pip's usual pick (the local CPU wheel
# where one lies on disk). `make setup TORCH=cpu` or `TORCH=cuda` overrides the guess.
TORCH ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
TORCH_VERSION := $(shell sed -n 's/^torch==//p' constraints.txt)

$(STAMP): pyproject.toml constraints.txt $(VENV)/.torch-$(TORCH)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[pipeline,test]"
	touch $@

$(VENV)/.torch-$(TORCH):
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "abdoseg needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(TORCH),cuda)
	if ! $(BIN)/python -c 'import torch, sys; sys.exit(torch.version.cuda is None)' 2>/dev/null; then \
	  $(BIN)/python -m pip uninstall --quiet --yes torch 2>/dev/null || true; fi
	$(BIN)/python -m pip install --quiet -c constraints.txt "torch===$(TORCH_VERSION)"
	$(BIN)/python -c 'import torch, sys; sys.exit(torch.version.cuda is None and "make setup: pip installed a CPU build of torch " + torch.__version__); print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU usable:", torch.cuda.is_available())'
endif
	rm -f $(VENV)/.torch-*
	touch $@

# Off-screen rendering needs an EGL driver (Mesa); the report test needs a headless Chromium.
system-deps:
	@missing=""; \
	ldconfig -p | grep -q 'libEGL_mesa.so.0' || missing="$$missing libegl1 libegl-mesa0 libgl1-mesa-dri"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing system packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null); \
	  else echo "please install these Debian packages:$$missing" >&2; exit 1; fi; \
	fi

report: setup
	$(BIN)/snakemake --cores all results/report.html

# A fresh clone: fetch data, checkpoints and results from the DVC remote (.dvc/config), then give them modification
# times in pipeline order, so that Snakemake (which compares times) sees them up to date, as DVC (hashes) does.
pull: setup
	$(BIN)/dvc pull
	$(MAKE) restore-times

restore-times:
	snakemake --cores 1 --touch results/report.html

# Two pytest workers, whole test files each (pytest-xdist's loadfile: a file's module fixtures, such as the end-to-end
# pipeline run, are built once, in one process). On the 2-core machine the suite takes about two thirds of the time
# it takes in one process (docs/benchmarks.md, "`make test` on two workers"); plain `pytest` still runs it in one.
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: setup
	$(BIN)/python bench/run.py --big

clean:
	rm -rf .snakemake results data/raw data/processed data/splits.json
