# tf_raw: every target works from a fresh clone; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra flags for the program, e.g. make train ARGS="--epochs=5".
ARGS   ?=

.PHONY: help install train test bench clean

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

test: install  ## Run the offline test suite.
	$(PY) -m pytest $(ARGS)

bench: install  ## Time training against the TF1 graph, Keras, PyTorch (~5 min).
	$(PY) -m tf_raw.bench --json=bench.json $(ARGS)

clean:  ## Remove .venv and local runs (not the CIFAR-10 cache).
	rm -rf $(VENV) runs
