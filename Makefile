# One command from a fresh clone: `make report` (set-up + the whole pipeline) or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup system-deps report test bench pull restore-times clean

setup: $(STAMP) system-deps

# Pinned Python dependencies (constraints.txt); torch 2.13.0 (pip takes the local CPU wheel where one lies on disk).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "abdoseg needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[pipeline,test]"
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

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/run.py --big

clean:
	rm -rf .snakemake results data/raw data/processed data/splits.json
