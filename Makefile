# tf_raw: every target works from a fresh clone; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra flags for the program, e.g. make train ARGS="--epochs=5".
ARGS   ?=

.PHONY: help install train test bench clean compare graph

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP)  ## Create .venv with the runtime and test dependencies.

$(STAMP): requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	touch $(STAMP)

train: install  ## Train 50 epochs on CIFAR-10 (downloaded if not cached).
	$(PY) -m tf_raw.train $(ARGS)

compare: install  ## Run the notebook's TF1 graph beside the TF2 code, step by step.
	$(PY) -m tf_raw.compare $(ARGS)

graph: install  ## Print one training step's op graph: shapes, parameters, FLOPs.
	$(PY) -m tf_raw.graph $(ARGS)

test: install  ## Run the offline test suite.
	$(PY) -m pytest $(ARGS)

clean:  ## Remove .venv and local runs (not the CIFAR-10 cache).
	rm -rf $(VENV) runs
