# The two commands of the README:
#   make train   compile a spec and train it on the bundled digits data, into
#                runs/quickstart-<spec name>/ (about 73 s on a 2-core CPU, 15 epochs of
#                cifar_resnet20, after the first-time set-up)
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
	$(VENV)/bin/rnetc compile $(SPEC) --train --data digits --epochs $(EPOCHS) --output-dir runs/quickstart-$(basename $(notdir $(SPEC)))

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) -m resnet_dsl fmt --check specs resnet_dsl/frontend/prelude.rnet

docs: venv
	$(PY) -m resnet_dsl.catalog > docs/errors.md
	$(PY) scripts/gallery.py
	$(PY) scripts/gen_textmate.py
