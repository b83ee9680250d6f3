"""A multi-worker run's folder: the chief owns it, every worker agrees on a stop.

With `--strategy=multi_worker` every worker process runs the same loop on the
same batches (`tf_raw/distribute.py`); what differs is the run folder:

* The chief (worker 0) owns `--model_dir`: the lock, run_config.json,
  metrics.jsonl, TensorBoard events, the step log and the checkpoints, as a
  one-process run does.
* Every other worker restores from the chief's folder (all workers must
  start from the same weights: restoring from an empty folder of its own
  would train different weights with no error, then hang the chief), and
  writes its own checkpoints, which MultiWorkerMirroredStrategy needs every
  worker to write, to a scratch folder deleted at exit.
* A stop must be agreed: a signal reaches one process, but if that worker
  alone stopped, the others would wait at the next all-reduce until the
  collective timeout. `AgreeOnStop` all-reduces each worker's pending stop
  once per `train_steps` call, so all stop after the same step and save it.
* A worker that crashes or stalls makes the others' all-reduce fail (within
  about a second, or --collective_timeout): `WorkerLost` turns that into one
  line that says what to do.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

from tf_raw import distribute
from tf_raw import loop
from tf_raw.run_folder import checkpoints


class WorkerLost(loop.TrainingError):
  """Another worker stopped answering; str(e) says what to do."""


class _ChiefFolder(checkpoints.CheckpointStore):
  """The chief's checkpoints, read by another worker (never cleaned here)."""

  def _remove_leftovers(self):
    pass  # Unfinished saves in the chief's folder are the chief's to delete.


class WorkerCheckpoints:
  """A non-chief worker's checkpoints: restored from the chief's folder.

  Has `CheckpointStore`'s methods and attributes, so `loop.Trainer` uses it
  as it is; `close()` deletes the scratch folder.
  """

  def __init__(self, checkpoint, model_dir, max_to_keep):
    self._chief = _ChiefFolder(checkpoint, model_dir, max_to_keep)
    self.scratch_dir = tempfile.mkdtemp(prefix="tf_raw-worker-")
    self._own = checkpoints.CheckpointStore(checkpoint, self.scratch_dir,
                                            max_to_keep=1)
    self.last_good = None

  def restore(self, out=print):
    self.last_good = self._chief.restore(out)
    return self.last_good

  def save(self, step):
    return self._own.save(step)

  def close(self):
    shutil.rmtree(self.scratch_dir, ignore_errors=True)


class PendingStop:
  """Where a worker's signal handler leaves its stop until the workers agree."""

  def __init__(self):
    self.stop_reason = None


class AgreeOnStop(loop.Hook):
  """Stops every worker after the same step when any one of them got a signal.

  Once per `train_steps` call (`after_step`), each worker contributes a 1
  for each signal it got (SIGINT, SIGTERM) to a SUM all-reduce; a non-zero
  total becomes every worker's `trainer.stop_reason` (SIGTERM first), so all
  save the same checkpoint and exit with the same code.
  """

  SIGNALS = ("SIGTERM", "SIGINT")

  def __init__(self, strategy, pending):
    self.pending = pending

    @tf.function
    def agree(flags):
      def replica_sum(value):
        # tf.identity: a copy on the replica's device (the argument has
        # none, and an all-reduce needs one).
        return tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.identity(value))
      return strategy.experimental_local_results(
          strategy.run(replica_sum, args=(flags,)))[0]

    self._agree = agree

  def after_step(self, trainer, step):
    mine = [float(self.pending.stop_reason == name) for name in self.SIGNALS]
    agreed = self._agree(tf.constant(mine)).numpy()
    for name, count in zip(self.SIGNALS, agreed):
      if count and trainer.stop_reason is None:
        trainer.stop_reason = name


def worker_lost(error, model_dir):
  """The one line for a collective that failed because a worker went away."""
  return WorkerLost(
      f"Another worker stopped answering ({type(error).__name__}), so this "
      f"one stopped too; {model_dir} keeps the chief's newest checkpoint, so "
      "start every worker again with the same command to continue.")


# The watchdog of `start_strategy`: a process of its own, because the waiting
# constructor holds Python's GIL (no thread or signal handler of ours runs).
_WATCHDOG = """
import os, signal, sys, time
time.sleep(float(sys.argv[2]))
print(sys.argv[3], file=sys.stderr, flush=True)
os.kill(int(sys.argv[1]), signal.SIGKILL)
"""


def start_strategy(config, worker):
  """`distribute.make_strategy`, but a missing worker ends it with one line.

  MultiWorkerMirroredStrategy's constructor waits for every worker named in
  TF_CONFIG, forever, inside TensorFlow's C++ code. With
  --collective_timeout, a watchdog process prints why and ends this one
  (SIGKILL: nothing was written yet) once that much time has passed.

  Args:
    config: the run's `config.TrainConfig`.
    worker: (index, count) from `distribute.worker_of_tf_config()`.
  """
  timeout = config.collective_timeout or None
  watchdog = None
  if config.strategy == distribute.MULTI_WORKER and timeout:
    message = (f"error: worker {worker[0]} waited {timeout:g} s for all "
               f"{worker[1]} workers of TF_CONFIG to start; start the missing "
               "ones (python -m tf_raw.tools.launch starts them all), or check "
               "TF_CONFIG's addresses.")
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout),
         message], stdin=subprocess.DEVNULL)
  try:
    return distribute.make_strategy(config.strategy, config.replicas, timeout)
  finally:
    if watchdog:
      watchdog.kill()
      watchdog.wait()
