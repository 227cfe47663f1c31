# Two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo clean

install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==25.3"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

# Until the mini_cs recipe pipeline (egs2/mini_cs/st1/run.sh) lands, the demo synthesises the tiny
# mini_cs corpus and runs the smallest end-to-end example: train with ESPnet's trainer, decode, reload.
demo: install
	cd egs2/mini_cs/st1 && PYTHON=$(CURDIR)/$(PY) ./local/data.sh --preset tiny
	$(PY) -m pytest -v tests/test_train_decode.py

clean:
	rm -rf $(VENV) build *.egg-info
