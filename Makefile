# tf_raw: every target works from a fresh clone; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra flags for the program, e.g. make train ARGS="--epochs=5".
ARGS   ?=

# Where `make tensorboard` looks for runs (each run's train/ and test/).
LOGDIR ?= runs

.PHONY: help install train test bench clean compare graph tensorboard explore export predict soak

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
	$(PY) -m tf_raw.tf1.compare $(ARGS)

graph: install  ## Print one training step's op graph: shapes, parameters, FLOPs.
	$(PY) -m tf_raw.tf1.graph $(ARGS)

test: install  ## Run the offline test suite.
	$(PY) -m pytest $(ARGS)

tensorboard: install  ## Show the runs in runs/ in TensorBoard (pip install tensorboard).
	@$(PY) -c "import tensorboard" 2>/dev/null || { \
	  echo "TensorBoard is not installed (tf_raw does not need it): run" \
	       "'$(PY) -m pip install tensorboard', then 'make tensorboard' again."; \
	  exit 1; }
	$(PY) -m tensorboard.main --logdir=$(LOGDIR) $(ARGS)

explore: install  ## Print the data's shapes and counts, draw runs/samples.png.
	$(PY) -m tf_raw.tools.explore $(ARGS)

export: install  ## SavedModel from a run: ARGS="--model_dir=DIR --export_dir=OUT".
	$(PY) -m tf_raw.tools.export $(ARGS)

predict: install  ## Top-3 classes: ARGS="--model_dir=DIR --image=a.png".
	$(PY) -m tf_raw.tools.predict $(ARGS)

bench: install  ## Time training in turns against the TF1 graph, Keras, PyTorch (~7 min).
	$(PY) -m tf_raw.bench --json=bench.json $(ARGS)

soak: install  ## Restart a small run 120 times (signals) and 10 (kill -9): minutes.
	$(PY) -m tf_raw.run_folder.soak $(ARGS)

clean:  ## Remove .venv and local runs (not the CIFAR-10 cache).
	rm -rf $(VENV) runs
