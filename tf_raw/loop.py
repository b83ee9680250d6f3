"""The epoch loop: batches in, traced steps run, evaluations and checkpoints out.

Public pieces:

* `Trainer(config, dataset)`: owns a `step.Learner` (the variables and the
  traced steps) and a `tf.train.Checkpoint` of it; `trainer.run()` trains to
  `config.epochs`, continuing from the newest checkpoint in `config.model_dir`.
* `Hook`: what a trainer tells the code around it, and when (TensorBoard, the
  progress bar and the run folder's guarantees attach here).
* `epoch_order`, `steps_per_epoch`: which images each step sees.
* `progress_line`, `per_class_accuracy`, `evaluation_lines`: the lines the
  notebook printed (shared with the TF1 loop of `tf_raw/tf1/train_v1.py`).

How this maps to the notebook's TF1 loop:

    for i in range(50):                                  # for epoch in ...
      for start, end in zip(range(0, 50000, 128), ...):   # train_batches(...)
        sess.run(train_op, feed_dict={X: ..., Y: ...})    #   learner.train_steps
      print(i, np.mean(np.argmax(teY, 1) ==               # _evaluate_and_log
                       sess.run(predict_op, feed_dict=...)))

Everything a restart needs is in TF variables that the checkpoint saves: the
weights, their moving average, the optimizer slots and `global_step`. The
order of an epoch is a pure function of (seed, epoch) and each dropout mask of
(seed, global_step), so a restored run continues exactly where it stopped,
even in the middle of an epoch. What makes a run folder trustworthy (a damaged
checkpoint skipped, one process per folder, Ctrl-C saving first, a NaN loss
stopping the run, metrics.jsonl kept in step) is `tf_raw/run_folder/`, which
wraps this class; the loop itself stays the TensorFlow.
"""

import contextlib
import math
import time

import numpy as np
import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import step as step_lib

# Training steps per call of `train_steps` (fewer at checkpoints and at the end
# of an epoch). One call per step costs a Python round trip and a host sync
# each time; a call per 20 steps keeps Ctrl-C answered within about 2 s on a
# 2-core CPU.
STEPS_PER_CALL = 20


class TrainingError(Exception):
  """A run cannot go on; str(e) says why and what to do, in one sentence."""


class Stopped(Exception):
  """`Trainer.stop_reason` was set (e.g. by a signal); the run stopped.

  Attributes:
    reason: what asked to stop, e.g. "SIGINT".
    step: the global step reached.
    saved: whether a checkpoint of `step` was written first.
  """

  def __init__(self, reason, step, saved):
    super().__init__(f"stopped on {reason} at step {step}")
    self.reason, self.step, self.saved = reason, step, saved


class Hook:
  """Does nothing at each point of the loop; override what you need.

  A hook is any object with some of these methods (subclassing is optional).
  `Trainer.run()` calls each hook with the trainer as the first argument:

      after_restore(trainer, step)  after the newest checkpoint was restored
                                    (step: where the run is, 0 if new)
      begin(trainer, step)          before the first step of this process
      after_step(trainer, step)     after each `train_steps` call (up to
                                    STEPS_PER_CALL steps); step: the global
                                    step reached, a Python int
      before_save(trainer, step)    before each checkpoint (may raise)
      after_epoch(trainer, epoch, step)   after the epoch's checkpoint and
                                    progress line (epoch: 0-based); the
                                    epoch's mean loss and images/sec are in
                                    trainer.epoch_record
      after_evaluate(trainer, epoch, step, record)   after a test evaluation;
                                    record: the dict `_evaluate_and_log` made
      end(trainer, step)            when run() stops, normally or not

  `after_step` runs every few steps, so it must stay cheap: reading a tensor
  there (`.numpy()`) makes Python wait for the step to finish.
  """

  def after_restore(self, trainer, step):
    pass

  def begin(self, trainer, step):
    pass

  def after_step(self, trainer, step):
    pass

  def before_save(self, trainer, step):
    pass

  def after_epoch(self, trainer, epoch, step):
    pass

  def after_evaluate(self, trainer, epoch, step, record):
    pass

  def end(self, trainer, step):
    pass


def epoch_order(seed, epoch, num_images, shuffle=True):
  """Returns the order in which epoch `epoch` visits the training images.

  Args:
    seed: the run's seed.
    epoch: 0-based epoch number.
    num_images: training set size N.
    shuffle: False keeps the file order, as the notebook did.

  Returns:
    int64 [N] permutation of 0..N-1, a pure function of its arguments.
  """
  if not shuffle:
    return np.arange(num_images)
  return np.random.default_rng([seed, epoch]).permutation(num_images)


def steps_per_epoch(num_images, batch_size, drop_remainder):
  """Training steps in one epoch (the notebook's loop: 390, losing 80 images)."""
  if drop_remainder:
    return num_images // batch_size
  return math.ceil(num_images / batch_size)


def check_steps_per_epoch(num_steps, num_images, batch_size):
  """Raises TrainingError when --drop_remainder leaves no step to run."""
  if num_steps == 0:
    raise TrainingError(
        f"--batch_size={batch_size} is larger than the {num_images} training "
        "images and --drop_remainder is set, so no step would run; lower "
        "--batch_size.")


class Checkpoints:
  """Saves and restores a `tf.train.Checkpoint` with TensorFlow's manager.

  `tf.train.CheckpointManager` numbers checkpoints (ckpt-<step>), keeps the
  newest `max_to_keep`, and writes each one atomically. The run folder's
  `CheckpointStore` (tf_raw/run_folder/checkpoints.py) has the same three
  methods and also falls back past a damaged checkpoint.
  """

  def __init__(self, checkpoint, model_dir, max_to_keep):
    self.checkpoint = checkpoint
    self.manager = tf.train.CheckpointManager(
        checkpoint, model_dir, max_to_keep=max_to_keep,
        checkpoint_name=config_lib.CHECKPOINT_PREFIX)
    self.last_good = None  # The newest checkpoint known to be complete.

  def restore(self, out=print):
    """Restores the newest checkpoint; returns its path, or None if none."""
    del out  # Nothing to report: no fallback here.
    path = self.manager.latest_checkpoint
    if path:
      self.checkpoint.restore(path).assert_existing_objects_matched()
    self.last_good = path
    return path

  def save(self, step):
    """Writes ckpt-<step> and drops all but the newest max_to_keep."""
    self.last_good = self.manager.save(checkpoint_number=step)
    return self.last_good


class Trainer:
  """Trains `ConvNet` with TF1-style RMSProp on a `data.Dataset`."""

  def __init__(self, config, dataset, out=print, hooks=(),
               checkpoints=Checkpoints, strategy=None):
    """Builds every variable, the traced steps and the checkpoint.

    Args:
      config: a `config.TrainConfig`.
      dataset: a `data.Dataset` (uint8 NHWC images, int32 labels).
      out: where user-facing lines go (print by default; tests collect them).
      hooks: `Hook`s called at fixed points of `run()`.
      checkpoints: a class like `Checkpoints`, called as
        checkpoints(checkpoint, model_dir, max_to_keep).
      strategy: None (one device), or a `tf.distribute.Strategy` whose scope
        the variables are created in (tf_raw/distribute.py); the loop is the
        same either way.
    """
    self.config = config
    self.dataset = dataset
    self.out = out
    self.hooks = list(hooks)
    self.stop_reason = None  # Set (e.g. by a signal handler) to stop cleanly.
    # The last finished epoch's mean loss and speed (`_log_epoch`).
    self.epoch_record = None
    self.steps_per_epoch = steps_per_epoch(
        len(dataset.train_labels), config.batch_size, config.drop_remainder)
    check_steps_per_epoch(self.steps_per_epoch, len(dataset.train_labels),
                          config.batch_size)
    self.strategy = strategy
    with strategy.scope() if strategy else contextlib.nullcontext():
      self.learner = step_lib.Learner(
          config, dataset.num_classes,
          total_steps=config.epochs * self.steps_per_epoch)
    learner = self.learner
    # Everything a restart needs, by name (the names are the checkpoint's keys).
    self.checkpoint = tf.train.Checkpoint(
        model=learner.model, optimizer=learner.optimizer,
        global_step=learner.global_step,
        epoch_loss_sum=learner.epoch_loss_sum)
    if learner.average_model is not None:
      self.checkpoint.average_model = learner.average_model
    self.checkpoints = checkpoints(self.checkpoint, config.model_dir,
                                   config.max_to_keep)

  # ----------------------------------------------------------- the loop --

  def run(self):
    """Trains from wherever model_dir left off to config.epochs.

    Returns:
      The last evaluation's accuracy (None if nothing was evaluated).

    Raises:
      Stopped: `stop_reason` was set; the checkpoint of the step reached
        was saved first (unless nothing had run yet).
    """
    config, spe = self.config, self.steps_per_epoch
    restored = self.checkpoints.restore(out=self.out)
    step = start_step = int(self.learner.global_step.numpy())
    if restored:
      self.out(f"Resuming from {restored} at step {start_step} "
               f"(epoch {start_step // spe}).")
    self._call_hooks("after_restore", start_step)
    if start_step >= config.epochs * spe:
      self.out(f"Nothing to do: {config.model_dir} already holds a run of "
               f"{start_step / spe:g} epochs ({start_step} steps), as many as "
               f"--epochs={config.epochs} asks for or more; raise --epochs to "
               "train further.")
      return None
    if self.stop_reason:  # It came while restoring: nothing new to save.
      raise Stopped(self.stop_reason, start_step, saved=False)

    accuracy = None
    start_time = time.monotonic()
    self._call_hooks("begin", start_step)
    try:
      for epoch in range(start_step // spe, config.epochs):
        epoch_start_time = time.monotonic()
        order = epoch_order(config.seed, epoch, len(self.dataset.train_labels),
                            config.shuffle)
        first_batch = batch = step % spe
        if first_batch == 0:
          self.learner.epoch_loss_sum.assign(0.0)
        while batch < spe:
          num_steps = self._steps_in_next_call(step, batch)
          self.train_batches(order, batch, num_steps)
          batch += num_steps
          step = epoch * spe + batch
          self._call_hooks("after_step", step)
          if (self.stop_reason or batch == spe or
              (config.checkpoint_every_steps and
               step % config.checkpoint_every_steps == 0)):
            self.save(step)
          if self.stop_reason:
            raise Stopped(self.stop_reason, step, saved=True)
        self.epoch_record = self._log_epoch(
            epoch, batch - first_batch, epoch_start_time, start_time,
            start_step)
        self._call_hooks("after_epoch", epoch, step)
        if self.evaluation_due(epoch):
          accuracy = self.evaluate_and_log(epoch, step)["accuracy"]
        if self.stop_reason and epoch < config.epochs - 1:
          # It came during the epoch-end save or evaluation: both are done.
          raise Stopped(self.stop_reason, step, saved=True)
    finally:
      # Also on a stop or an error: hooks flush and close their files.
      self._call_hooks("end", step)
    self.out(f"Final accuracy : {accuracy}")
    return accuracy

  def train_batches(self, order, first_batch, num_batches):
    """Trains on batches first_batch .. first_batch + num_batches - 1 of an epoch.

    Args:
      order: int [N] the epoch's image order (`epoch_order`).
      first_batch: 0-based batch number within the epoch.
      num_batches: how many steps to run, in one `train_steps` call.
    """
    batch_size = self.config.batch_size
    index = order[first_batch * batch_size:
                  (first_batch + num_batches) * batch_size]
    # One gather on the host per call: uint8 batches are small (384 KB each),
    # and the dataset is not copied into TensorFlow (that would be 150 MB).
    self.learner.train_steps(self.dataset.train_images[index],
                             self.dataset.train_labels[index])

  def _steps_in_next_call(self, step, first_batch):
    """How many steps the next `train_batches` call runs, from global `step`.

    At most STEPS_PER_CALL, never past the end of the epoch, and ending on a
    multiple of checkpoint_every_steps and log_every_steps, so checkpoints
    and summaries land where they did when each step was its own call.
    """
    num_steps = min(STEPS_PER_CALL, self.steps_per_epoch - first_batch)
    for every in (self.config.checkpoint_every_steps,
                  self.config.log_every_steps):
      if every:
        num_steps = min(num_steps, every - step % every)
    return num_steps

  def save(self, step):
    """Checkpoints step `step` (hooks may refuse first, e.g. on a NaN loss)."""
    self._call_hooks("before_save", step)
    self.checkpoints.save(step)

  def _call_hooks(self, method_name, *args):
    for hook in self.hooks:  # A hook may define only the methods it needs.
      method = getattr(hook, method_name, None)
      if method:
        method(self, *args)

  # ----------------------------------------------------------- evaluation --

  def evaluation_due(self, epoch):
    """The notebook evaluated after epoch 0, every 10th, and the last."""
    return epoch % self.config.eval_every == 0 or epoch == self.config.epochs - 1

  def predict_in_batches(self, images_uint8, predict=None):
    """int32 [N] class ids for uint8 [N, 32, 32, 3], eval_batch_size at a time.

    Batches bound the memory: TensorFlow's allocator keeps its peak, and one
    1,000-image batch's first conv output alone is 131 MB.

    Args:
      images_uint8: numpy uint8 [N, 32, 32, 3].
      predict: a traced prediction function (default `learner.predict`).
    """
    predict = predict or self.learner.predict
    batch = self.config.eval_batch_size
    return np.concatenate([
        predict(images_uint8[start:start + batch]).numpy()
        for start in range(0, len(images_uint8), batch)])

  def evaluate(self, predict=None):
    """Predicts every test image in batches.

    Args:
      predict: a traced prediction function (default `learner.predict`).

    Returns:
      (accuracy, per_class_accuracy [num_classes], predictions int32 [M]).
    """
    labels = self.dataset.test_labels
    predictions = self.predict_in_batches(self.dataset.test_images, predict)
    per_class = per_class_accuracy(predictions, labels,
                                   self.dataset.num_classes)
    return float(np.mean(predictions == labels)), per_class, predictions

  def evaluate_and_log(self, epoch, step):
    """Evaluates, prints the notebook's lines; returns the evaluation record."""
    accuracy, per_class, predictions = self.evaluate()
    record = {"kind": "evaluation", "epoch": epoch, "step": step,
              "accuracy": accuracy,
              "per_class_accuracy": dict(zip(self.dataset.class_names,
                                             per_class.tolist())),
              "test_images": int(len(predictions)), "time": time.time()}
    for line in evaluation_lines(epoch, accuracy, per_class, predictions,
                                 self.dataset.class_names,
                                 self.config.print_predictions):
      self.out(line)
    if self.learner.average_model is not None:
      # Also the raw weights, as the notebook evaluated them.
      record["raw_weights_accuracy"] = self.evaluate(
          self.learner.predict_raw)[0]
      self.out(f"(moving-average weights; raw weights: "
               f"{record['raw_weights_accuracy']})")
    self._call_hooks("after_evaluate", epoch, step, record)
    return record

  def _log_epoch(self, epoch, steps_run, epoch_start_time, start_time,
                 start_step):
    """Prints one progress line: mean loss, images/sec, elapsed and ETA.

    Returns:
      The epoch's record: {"kind": "epoch", "epoch", "step", "loss" (the
      mean of its steps' losses), "images_per_sec" (of the steps this process
      ran), "time"}; metrics.jsonl keeps it (`run_folder.guard.MetricsFile`).
    """
    config = self.config
    now = time.monotonic()
    mean_loss = self.mean_epoch_loss()
    step = int(self.learner.global_step.numpy())
    seconds_per_step = (now - start_time) / max(step - start_step, 1)
    images_per_sec = (steps_run * config.batch_size /
                      max(now - epoch_start_time, 1e-9))
    self.out(progress_line(
        epoch, config.epochs, mean_loss, images_per_sec, now - start_time,
        seconds_per_step * (config.epochs * self.steps_per_epoch - step)))
    return {"kind": "epoch", "epoch": epoch, "step": step, "loss": mean_loss,
            "images_per_sec": images_per_sec, "time": time.time()}

  def mean_epoch_loss(self):
    """The mean training loss of the epoch so far (exact after a restore)."""
    return float(self.learner.epoch_loss_sum.numpy()) / self.steps_per_epoch


# The output lines, shared with the TF1 loop (tf_raw/tf1/train_v1.py).


def progress_line(epoch, epochs, mean_loss, images_per_sec, elapsed, eta):
  """'epoch 3/50  loss 1.2345  1,050 images/sec  elapsed 0:02:41  ETA ...'."""
  return (f"epoch {epoch + 1}/{epochs}  loss {mean_loss:.4f}  "
          f"{images_per_sec:,.0f} images/sec  elapsed "
          f"{_hms(elapsed)}  ETA {_hms(eta)}")


def per_class_accuracy(predictions, labels, num_classes):
  """float [num_classes]: accuracy on each class's images (NaN if it has none)."""
  correct = predictions == labels
  return np.array([
      correct[labels == k].mean() if np.any(labels == k) else float("nan")
      for k in range(num_classes)])


def evaluation_lines(epoch, accuracy, per_class, predictions, class_names,
                     print_predictions=True):
  """The notebook's evaluation lines, then the per-class accuracies."""
  lines = [f"epoch : {epoch} and accuracy : {accuracy}"]
  if print_predictions:
    lines.append(np.array2string(predictions, threshold=20))
  lines.append("per-class accuracy: " + ", ".join(
      f"{name} {value:.3f}" for name, value in zip(class_names, per_class)))
  return lines


def _hms(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
