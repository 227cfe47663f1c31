# Two commands a user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo clean

install: $(STAMP)

# --no-cache-dir: torch's wheels and CUDA libraries are ~4.5 GB; a pip cache would hold them a second time
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir --upgrade "pip==25.3"
	$(PY) -m pip install -q --no-cache-dir -e ".[test]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

# The mini_cs recipe end to end on a CPU: synthesise the corpus, train the tokenizer and the stand-in
# LLM, the three phases, decode and score; then print the results table.
demo: install
	cd egs2/mini_cs/st1 && PYTHON=$(CURDIR)/$(PY) ./run.sh --stop_stage 14
	cat egs2/mini_cs/st1/RESULTS.md

clean:
	rm -rf $(VENV) build *.egg-info
