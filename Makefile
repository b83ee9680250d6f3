# tf_raw: every target works from a fresh clone; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra flags for the program, e.g. make train ARGS="--epochs=5".
ARGS   ?=

# Where `make tensorboard` looks for runs (each run's train/ and test/).
LOGDIR ?= runs

.PHONY: help install train test bench clean compare graph tensorboard explore export predict soak \
        plot notebook mutants

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

plot: install  ## Loss and accuracy curves: ARGS="--model_dir=DIR [--model_dir=DIR2]".
	$(PY) -m tf_raw.tools.plot $(ARGS)

notebook: install  ## Open the walkthrough in Jupyter (installs requirements-notebook.txt).
	$(PY) -m pip install --quiet -r requirements-notebook.txt
	$(PY) -m jupyter lab notebooks/walkthrough.ipynb

export: install  ## SavedModel from a run: ARGS="--model_dir=DIR --export_dir=OUT".
	$(PY) -m tf_raw.tools.export $(ARGS)

predict: install  ## Top-3 classes: ARGS="--model_dir=DIR --image=a.png".
	$(PY) -m tf_raw.tools.predict $(ARGS)

bench: install  ## Time training in turns against the TF1 graph, Keras, PyTorch (3-6 min).
	$(PY) -m tf_raw.bench --json=bench.json $(ARGS)

soak: install  ## Restart a small run 120 times (signals) and 10 (kill -9): minutes.
	$(PY) -m tf_raw.run_folder.soak $(ARGS)

# `make mutants`: each lesson module with the fast tests that cover it. A
# mutant is killed when its tests fail; -x stops at the first failure. Three
# workarounds for mutmut 2.5:
# * it counts only exit status 1 as "tests failed", so a mutant that breaks
#   the import (a syntax error: pytest exits 2) would read "survived"; the
#   runner turns every failing status into 1, in the one process mutmut
#   starts (a shell's `|| exit 1` would leave pytest running when mutmut's
#   timeout kills the shell, and the run would hang on an endless loop);
# * it keeps one baseline test time (its timeout is 10x that) for every file,
#   keyed on the tests' contents, not on the runner: each module's baseline
#   is measured afresh by dropping the cached one first;
# * the bytecode of the mutated modules is deleted before each mutant: one of
#   the same length, written within the same second, could run a stale .pyc.
# --CI: exit 0 when mutants survive (1 only for a fatal error), so every module
# runs and `mutmut results` lists the survivors. While a run is going, never
# `mutmut show` or `apply` in the same folder: they re-read the source, which
# is mutated mid-run, into the cache, and the run dies ("Mutant.line is
# required"); look at a copy of the folder and its .mutmut-cache instead.
MUTANT_MODULES ?= optim model step loop data augment
MUTANT_TESTS_optim := tests/test_optim.py
MUTANT_TESTS_model := tests/test_model.py
MUTANT_TESTS_step  := tests/test_step.py
MUTANT_TESTS_loop  := tests/test_loop.py -k 'not Learning'
MUTANT_TESTS_data  := tests/test_data.py tests/test_cifar_format.py \
                      tests/test_bad_input.py::test_bad_data
MUTANT_TESTS_augment := tests/test_augment.py
MUTMUT := $(VENV)/bin/mutmut
PYTEST_EXIT_1 := import sys, pytest; sys.exit(pytest.main(sys.argv[1:]) != 0)
DROP_BASELINE := import os, sqlite3; os.path.exists('.mutmut-cache') and \
  sqlite3.connect('.mutmut-cache', isolation_level=None).execute( \
  'DELETE FROM MiscData WHERE key = ?', ('baseline_time_elapsed',))

mutants: install  ## Mutation testing of the lesson modules (slow: see BUILD.md).
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(foreach module,$(MUTANT_MODULES),$(PY) -c "$(DROP_BASELINE)" && \
	  $(MUTMUT) run --CI --no-progress --simple-output --test-time-multiplier=4 \
	  --paths-to-mutate tf_raw/$(module).py \
	  --pre-mutation 'rm -rf tf_raw/__pycache__' \
	  --runner "$(PY) -c '$(PYTEST_EXIT_1)' -x -q $(MUTANT_TESTS_$(module))"; )
	$(MUTMUT) results

clean:  ## Remove .venv and local runs (not the CIFAR-10 cache).
	rm -rf $(VENV) runs .mutmut-cache
