# tf_raw: every target works from a fresh clone; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra flags for the program, e.g. make train ARGS="--epochs=5".
ARGS   ?=

.PHONY: help install train test soak bench clean

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

soak: install  ## Restart a small run 120 times (signals) and 10 (kill -9): minutes.
	$(PY) -m tf_raw.soak $(ARGS)

clean:  ## Remove .venv and local runs (not the CIFAR-10 cache).
	rm -rf $(VENV) runs
