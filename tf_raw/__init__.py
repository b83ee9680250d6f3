"""tf_raw: the 2018 TF1 CIFAR-10 notebook, rebuilt from TF2 low-level ops.

The top of this package is the lesson, in reading order:

1. `model`  - the network: a `tf.Module` of five `tf.Variable`s, `tf.nn` ops.
2. `optim`  - TF1's RMSProp as `tf.raw_ops.ResourceApplyRMSProp`, and the
              weights' moving average.
3. `step`   - the loss and one training step: `tf.GradientTape`, traced once
              by `tf.function`; several steps per call; predict.
   `augment` - opt-in random crops and mirrors as graph ops, inside the step.
4. `loop`   - the epochs: order, batches, evaluation, checkpoints
              (`tf.train.CheckpointManager`), the notebook's output lines.
5. `data`   - CIFAR-10's batch files (a restricted unpickler), channels-first
              rows to NHWC by transpose, a synthetic stand-in.
6. `config` - the settings, one frozen dataclass.
7. `train`  - the program, `python -m tf_raw.train`, which wires it together.

Around it, in subpackages the lesson never imports (only the programs do):

* `sources`    - finding, downloading and safely unpacking CIFAR-10; your own
                 image folders.
* `run_folder` - what makes a run folder trustworthy: checkpoint fallback,
                 one process per folder, Ctrl-C saving first, NaN stopping,
                 metrics.jsonl kept in step; the soak test.
* `tf1`        - the notebook's own TF1 graph, runnable (`--api=v1`), side by
                 side with the TF2 step (`compare`), and the op-graph report
                 (`graph`).
* `tools`      - using what you trained: TensorBoard, SavedModel export,
                 predict, explore, plot (curves), the CIFAR-10 file writer.
* `bench`      - the benchmark against TF1, Keras and PyTorch.

The walkthrough notebook (notebooks/walkthrough.ipynb) builds the lesson
step by step, with its outputs.
"""

import sys as _sys

# `python -m tf_raw.<program>` imports this package first, while sys.argv[0]
# is still "-m". A Ctrl-C in the second or so before the program's `main`
# runs (absl, numpy and the flag modules importing) would otherwise print a
# traceback; until `flags.cli.boundary` takes over, it ends the program
# quietly with exit status 130 (nothing has been written yet). Library users
# (`import tf_raw` from their own code or tests) are left alone.
if _sys.argv[:1] == ["-m"]:
  import os as _os
  import signal as _signal

  def _interrupted_while_starting(signum, frame):
    del signum, frame
    print("error: interrupted (Ctrl-C) while starting; nothing was written.",
          file=_sys.stderr, flush=True)
    # Not `raise SystemExit`: a handler's exception can be swallowed by the
    # code it interrupts (a finaliser, an import guarded by a bare except),
    # and on a loaded machine the run then trained on, its Ctrl-C lost.
    # Nothing is open for writing yet, so ending the process at once is safe.
    _os._exit(130)  # pylint: disable=protected-access

  _signal.signal(_signal.SIGINT, _interrupted_while_starting)
