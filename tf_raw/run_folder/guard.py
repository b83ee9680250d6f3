"""`GuardedTrainer`: the lesson's `loop.Trainer`, with the run folder's guarantees.

The loop a learner reads (`tf_raw/loop.py`) trains, evaluates and saves. This
module wraps it so that a run folder can be trusted (BUILD.md, "What survives
what"), without changing a single step:

* `CheckpointStore` instead of the plain manager: a damaged newest
  checkpoint is skipped, a failed write leaves the previous one intact.
* `run()` checks run_config.json (the same run?), takes the folder's lock
  (one process per folder) and turns SIGINT/SIGTERM into a clean stop: the
  current `train_steps` call finishes, a checkpoint is saved, exit 130/143.
* Hooks: `StopOnNonFinite` refuses to checkpoint NaN weights,
  `MetricsFile` keeps metrics.jsonl (each epoch's loss and speed, each
  evaluation) in step with the checkpoints after any crash, `StepLogFile` writes steps.log (--step_log).
"""

import contextlib
import signal
import time

import tensorflow as tf

from tf_raw import loop
from tf_raw.run_folder import checkpoints
from tf_raw.run_folder import run_dir
from tf_raw.run_folder import workers


class GuardedTrainer(loop.Trainer):
  """`loop.Trainer` whose `run()` keeps every promise of the run folder."""

  def __init__(self, config, dataset, out=print, hooks=(), strategy=None,
               worker=(0, 1)):
    """Args as `loop.Trainer`'s, and:

      strategy: None, or the `tf.distribute.Strategy` of the run.
      worker: (index, count) of this process among the workers of a
        multi-worker run (tf_raw/run_folder/workers.py); (0, 1) otherwise.
    """
    self.worker_index, self.num_workers = worker
    self.is_chief = self.worker_index == 0
    # Where a signal's stop waits: the trainer itself, or, with several
    # workers, a pending stop that AgreeOnStop hands to every worker at once.
    self.pending = self
    guards = [StopOnNonFinite()]
    if self.num_workers > 1:
      self.pending = workers.PendingStop()
      guards.insert(0, workers.AgreeOnStop(strategy, self.pending))
    if self.is_chief:  # The chief alone writes the run folder's files.
      guards.append(MetricsFile())
      if config.step_log:
        guards.append(StepLogFile())
    super().__init__(config, dataset, out=out, hooks=[*guards, *hooks],
                     checkpoints=(checkpoints.CheckpointStore if self.is_chief
                                  else workers.WorkerCheckpoints),
                     strategy=strategy)

  def run(self):
    """Trains as `loop.Trainer.run` does, inside the folder's checks and lock.

    Raises:
      loop.TrainingError: the loss stopped being finite, or another worker
        of a multi-worker run went away (`workers.WorkerLost`).
      run_dir.RunDirError: the folder holds another run, is locked by another
        process, or cannot be written (checkpoints.CheckpointError included).
      SystemExit: SIGINT or SIGTERM arrived; a checkpoint was saved first.
    """
    config = self.config
    identity = run_dir.run_identity(config, self.dataset)
    run_dir.check_identity(config.model_dir, identity)  # Before any write.
    lock = (run_dir.RunLock(config.model_dir) if self.is_chief
            else contextlib.nullcontext())
    with lock, StopOnSignals(self.pending):
      if self.is_chief:
        run_dir.record_identity(config.model_dir, identity)
      try:
        return super().run()
      except loop.Stopped as stopped:
        if stopped.saved:
          # An epoch-end evaluation left undone is caught up on restart.
          self.out(f"Got {stopped.reason}: saved a checkpoint at step "
                   f"{stopped.step}; run the same command again to continue.")
        else:
          self.out(f"Got {stopped.reason} before training went on; "
                   f"{config.model_dir} is as it was.")
        raise SystemExit(128 + signal.Signals[stopped.reason].value) from None
      except tf.errors.OpError as error:
        if self.num_workers == 1:
          raise
        # A collective failed: a worker crashed, stalled past
        # --collective_timeout, or was cut off.
        raise workers.worker_lost(error, config.model_dir) from error
      finally:
        if not self.is_chief:
          self.checkpoints.close()


class StopOnSignals:
  """Turns SIGINT/SIGTERM into `trainer.stop_reason`, checked between calls.

  (With several workers, into a pending stop the workers then agree on.)

  A second signal raises KeyboardInterrupt at once (the newest complete
  checkpoint stays).
  """

  def __init__(self, trainer):
    self.trainer = trainer
    self._previous = {}

  def __enter__(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.trainer.stop_reason is not None:  # Second signal: stop now.
      raise KeyboardInterrupt
    self.trainer.stop_reason = signal.Signals(signum).name

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


class StopOnNonFinite(loop.Hook):
  """Stops the run, before a checkpoint, once the loss or a weight is NaN/inf.

  The step records the first non-finite loss in a variable (no host sync per
  step); this reads it once per checkpoint, with the weights' finiteness.
  """

  def before_save(self, trainer, step):
    learner = trainer.learner
    bad_step = int(learner.first_nonfinite_step.numpy())
    if bad_step < 0 and not all(
        bool(tf.reduce_all(tf.math.is_finite(w)))
        for w in learner.model.weights):
      bad_step = step - 1  # The loss was still finite; this update was not.
    if bad_step >= 0:
      last_good = trainer.checkpoints.last_good
      kept = (f"the last good checkpoint, {last_good}, is intact" if last_good
              else "no checkpoint had been written yet")
      raise loop.TrainingError(
          f"The loss became NaN or infinite at step {bad_step + 1}; training "
          f"stopped and {kept}; lower --learning_rate.")


class MetricsFile(loop.Hook):
  """Appends each epoch's and each evaluation's record to metrics.jsonl.

  Every record exactly once, in step with the checkpoints, after any crash:
  an epoch record ({"kind": "epoch", ...: mean training loss, images/sec})
  after each epoch, an evaluation record ({"kind": "evaluation", ...}) after
  each test evaluation.
  """

  def after_restore(self, trainer, step):
    """Makes metrics.jsonl agree with the restored step, after any crash.

    Records of steps after `step` are dropped (that work is redone). If
    `step` ends an epoch whose record was never written (the process died,
    or stopped on a signal, between the epoch-end checkpoint and the
    record), it is written now: the checkpoint holds the epoch's loss sum,
    so the mean loss is exact; its images/sec is null (not measured). If the
    epoch's evaluation was due but never written, it is evaluated now: the
    weights are exactly those the evaluation would have seen.
    """
    model_dir = trainer.config.model_dir
    dropped = run_dir.keep_metrics_up_to(model_dir, step)
    if dropped:
      trainer.out(f"Dropped {dropped} record(s) of steps after {step} from "
                  "metrics.jsonl; training will redo them.")
    if step == 0 or step % trainer.steps_per_epoch:
      return
    epoch = step // trainer.steps_per_epoch - 1
    if not _has_record(model_dir, "epoch", step):
      run_dir.append_metric(model_dir, {
          "kind": "epoch", "epoch": epoch, "step": step,
          "loss": trainer.mean_epoch_loss(), "images_per_sec": None,
          "time": time.time()})
    if trainer.evaluation_due(epoch) and not _has_record(
        model_dir, "evaluation", step):
      trainer.out(f"Evaluating epoch {epoch}, which the previous run ended "
                  "before evaluating.")
      trainer.evaluate_and_log(epoch, step)  # Its after_evaluate appends.

  def after_epoch(self, trainer, epoch, step):
    run_dir.append_metric(trainer.config.model_dir, trainer.epoch_record)

  def after_evaluate(self, trainer, epoch, step, record):
    run_dir.append_metric(trainer.config.model_dir, record)


def _has_record(model_dir, kind, step):
  return any(record.get("step") == step
             for record in run_dir.read_metrics(model_dir, kind))


class StepLogFile(loop.Hook):
  """steps.log: one line per step that ran, with a fingerprint of its batch."""

  def __init__(self):
    self._log = None
    self._last_step = 0
    self._orders = {}  # epoch -> its image order (recomputed once per epoch).

  def begin(self, trainer, step):
    self._log = run_dir.StepLog(trainer.config.model_dir, step)
    self._last_step = step

  def after_step(self, trainer, step):
    config, spe = trainer.config, trainer.steps_per_epoch
    for done in range(self._last_step, step):  # 0-based steps that just ran.
      epoch, batch = divmod(done, spe)
      if epoch not in self._orders:
        self._orders = {epoch: loop.epoch_order(
            config.seed, epoch, len(trainer.dataset.train_labels),
            config.shuffle)}
      order = self._orders[epoch]
      self._log.record(done + 1, epoch, batch,
                       order[batch * config.batch_size:
                             (batch + 1) * config.batch_size])
    self._last_step = step

  def end(self, trainer, step):
    if self._log:
      self._log.close()
