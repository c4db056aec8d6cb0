# The two commands of the README:
#   make train   compile a spec and train it on the bundled digits data (a few minutes, CPU)
#   make test    run the test suite
# Both create .venv on first use (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
SPEC ?= specs/cifar_resnet20.rnet
EPOCHS ?= 15

.PHONY: train test lint bench docs venv

venv:
	@bash scripts/bootstrap.sh

train: venv
	$(VENV)/bin/rnetc compile $(SPEC) --train --data digits --epochs $(EPOCHS) --output-dir runs/quickstart

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) -m resnet_dsl fmt --check specs resnet_dsl/frontend/prelude.rnet

docs: venv
	$(PY) -m resnet_dsl.catalog > docs/errors.md
	$(PY) scripts/gallery.py
	$(PY) scripts/gen_textmate.py
