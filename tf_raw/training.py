"""The training loop: one traced train step, one traced eval step, checkpoints.

Public pieces:

* `Trainer(config, dataset)`: owns the model, the optimizer, the step counter
  and the checkpoint; `trainer.run()` trains to `config.epochs`, resuming from
  `config.model_dir` if a checkpoint is there.
* `Trainer.train_step(images_uint8, labels)`: one RMSProp step, traced once.
* `Trainer.predict(images_uint8)`: class ids, dropout off, traced once.
* `epoch_order(seed, epoch, num_images, shuffle)`: the data order of an epoch.

How this maps to the notebook's TF1 loop:

    for i in range(50):                                  # for epoch in ...
      for start, end in zip(range(0, 50000, 128), ...):   # for batch in ...
        sess.run(train_op, feed_dict={X: ..., Y: ...,     #   train_step(...)
                                      p_keep_conv: 0.8, p_keep_hidden: 0.5})

Everything a restart needs is in TF variables that the checkpoint saves: the
weights, the optimizer slots and `global_step`. The data order of an epoch is
a pure function of (seed, epoch) and each dropout mask a pure function of
(seed, global_step), so a restored run continues exactly where it stopped,
even in the middle of an epoch. The run folder's other files (run_config.json,
metrics.jsonl, steps.log) are in `tf_raw.run_dir`, the checkpoints' safety
net in `tf_raw.checkpoints`; BUILD.md ("What survives what") sums it up.
"""

import dataclasses
import math
import signal
import threading
import time

import numpy as np
import tensorflow as tf

from tf_raw import checkpoints
from tf_raw import model as model_lib
from tf_raw import optim
from tf_raw import run_dir

METRICS_FILE = run_dir.METRICS_FILE


class TrainingError(Exception):
  """A run cannot go on; str(e) says why and what to do, in one sentence."""


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


class _StopSignal:
  """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def __enter__(self):
    # Python runs signal handlers in the main thread only; a Trainer driven
    # from another thread leaves signals to the program's own handling.
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signal_name is not None:  # Second signal: stop now.
      raise KeyboardInterrupt
    self.signal_name = signal.Signals(signum).name

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


class Trainer:
  """Trains `ConvNet` with TF1-style RMSProp on a `data.Dataset`."""

  def __init__(self, config, dataset, out=print):
    """Builds every variable, the traced steps and the checkpoint manager.

    Args:
      config: a `config.TrainConfig`.
      dataset: a `data.Dataset` (uint8 NHWC images, int32 labels).
      out: where user-facing lines go (print by default; tests collect them).
    """
    self.config = config
    self.dataset = dataset
    self.out = out
    self.steps_per_epoch = steps_per_epoch(
        len(dataset.train_labels), config.batch_size, config.drop_remainder)
    if self.steps_per_epoch == 0:
      raise TrainingError(
          f"--batch_size={config.batch_size} is larger than the "
          f"{len(dataset.train_labels)} training images and --drop_remainder "
          "is set, so no step would run; lower --batch_size.")

    # Every variable is created here, once, before any tracing.
    self.model = model_lib.ConvNet(config.init_stddev, seed=config.seed)
    self.optimizer = optim.RMSProp(
        self.model.weights, config.learning_rate, config.decay,
        config.momentum, config.epsilon)
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                   name="global_step")
    # Sum of this epoch's losses, read once per epoch (no host sync per step).
    self.epoch_loss_sum = tf.Variable(0.0, trainable=False,
                                      name="epoch_loss_sum")
    # The first step whose loss was not finite, or -1.
    self.first_nonfinite_step = tf.Variable(
        -1, dtype=tf.int64, trainable=False, name="first_nonfinite_step")

    image_spec = tf.TensorSpec([None, *model_lib.IMAGE_SHAPE], tf.uint8)
    label_spec = tf.TensorSpec([None], tf.int32)
    self.train_step = tf.function(
        self._train_step, input_signature=[image_spec, label_spec])
    self.predict = tf.function(self._predict, input_signature=[image_spec])

    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer,
        global_step=self.global_step, epoch_loss_sum=self.epoch_loss_sum)
    self.checkpoints = checkpoints.CheckpointStore(
        self.checkpoint, config.model_dir, config.max_to_keep)
    self.manager = self.checkpoints.manager

  # ---------------------------------------------------------------- steps --

  def _train_step(self, images_uint8, labels):
    """One RMSProp step on a batch; returns its mean loss (float32 scalar).

    Args:
      images_uint8: uint8 [B, 32, 32, 3].
      labels: int32 [B], class ids.
    """
    config = self.config
    images = model_lib.scale_images(images_uint8)           # (B, 32, 32, 3)
    # Each step's dropout masks: a pure function of (seed, step).
    dropout_seed = tf.stack(
        [tf.constant(config.seed, tf.int64), self.global_step])
    with tf.GradientTape() as tape:
      logits = self.model(images, config.keep_prob_conv,
                          config.keep_prob_hidden, dropout_seed)  # (B, 10)
      # The notebook's loss: softmax cross-entropy on one-hot labels.
      per_image = tf.nn.softmax_cross_entropy_with_logits(
          labels=tf.one_hot(labels, model_lib.NUM_CLASSES), logits=logits)
      # The mean over the global batch (what tf.distribute would need).
      loss = tf.nn.compute_average_loss(per_image)
    gradients = tape.gradient(loss, self.model.weights)
    self.optimizer.apply(gradients)

    self.first_nonfinite_step.assign(tf.where(
        tf.math.is_finite(loss) | (self.first_nonfinite_step >= 0),
        self.first_nonfinite_step, self.global_step))
    self.epoch_loss_sum.assign_add(loss)
    self.global_step.assign_add(1)
    return loss

  def _predict(self, images_uint8):
    """int32 [B] predicted class ids for uint8 [B, 32, 32, 3]; no dropout."""
    logits = self.model(model_lib.scale_images(images_uint8))
    return tf.argmax(logits, axis=1, output_type=tf.int32)

  # ----------------------------------------------------------- evaluation --

  def evaluate(self):
    """Predicts every test image in batches.

    Returns:
      (accuracy, per_class_accuracy [num_classes], predictions int32 [M]).
    """
    images, labels = self.dataset.test_images, self.dataset.test_labels
    batch = self.config.eval_batch_size
    predictions = np.concatenate([
        self.predict(images[start:start + batch]).numpy()
        for start in range(0, len(labels), batch)])
    correct = predictions == labels
    per_class = np.array([
        correct[labels == k].mean() if np.any(labels == k) else float("nan")
        for k in range(self.dataset.num_classes)])
    return float(correct.mean()), per_class, predictions

  # ------------------------------------------------------------------ run --

  def restore(self):
    """Restores the newest usable checkpoint in model_dir; returns its path.

    A damaged newest checkpoint is reported and the one before it used; one
    from a different model is a `checkpoints.CheckpointError`.
    """
    return self.checkpoints.restore(out=self.out)

  def run(self):
    """Trains from wherever model_dir left off to config.epochs.

    Returns:
      The last evaluation's accuracy (None if nothing was evaluated).

    Raises:
      TrainingError: the loss stopped being finite.
      run_dir.RunDirError: the folder holds another run, is locked by another
        process, or cannot be written (checkpoints.CheckpointError included).
      SystemExit: SIGINT or SIGTERM arrived; a checkpoint was saved first.
    """
    config = self.config
    identity = run_dir.run_identity(config, self.dataset)
    run_dir.check_identity(config.model_dir, identity)  # Before any write.
    with run_dir.RunLock(config.model_dir), _StopSignal() as stop:
      run_dir.record_identity(config.model_dir, identity)
      return self._run(stop)

  def _run(self, stop):
    """`run`, inside the folder's lock and with `stop` watching for signals."""
    config, images, labels = (self.config, self.dataset.train_images,
                              self.dataset.train_labels)
    total_steps = config.epochs * self.steps_per_epoch
    restored = self.restore()
    start_step = int(self.global_step.numpy())
    if restored:
      self.out(f"Resuming from {restored} at step {start_step} "
               f"(epoch {start_step // self.steps_per_epoch}).")
    self._reconcile_metrics(start_step)
    if start_step >= total_steps:
      self.out(f"Nothing to do: {config.model_dir} already holds a finished "
               f"run of {config.epochs} epochs ({start_step} steps).")
      return None
    if stop.signal_name:  # It came while restoring: nothing new to save.
      self.out(f"Got {stop.signal_name} before training went on; "
               f"{config.model_dir} is as it was.")
      raise SystemExit(128 + signal.Signals[stop.signal_name].value)
    step_log = (run_dir.StepLog(config.model_dir, start_step)
                if config.step_log else None)

    accuracy = None
    start_time = time.monotonic()
    try:
      for epoch in range(start_step // self.steps_per_epoch, config.epochs):
        epoch_start_time = time.monotonic()
        order = epoch_order(config.seed, epoch, len(labels), config.shuffle)
        first_batch = int(self.global_step.numpy()) % self.steps_per_epoch
        if first_batch == 0:
          self.epoch_loss_sum.assign(0.0)
        for batch in range(first_batch, self.steps_per_epoch):
          index = order[batch * config.batch_size:
                        (batch + 1) * config.batch_size]
          self.train_step(images[index], labels[index])
          step = epoch * self.steps_per_epoch + batch + 1
          if step_log:
            step_log.record(step, epoch, batch, index)
          if (stop.signal_name or batch == self.steps_per_epoch - 1 or
              (config.checkpoint_every_steps and
               step % config.checkpoint_every_steps == 0)):
            self._save(step)
          if stop.signal_name:
            # An epoch-end evaluation left undone is caught up on restart.
            self._exit_on_signal(stop.signal_name, step)
        self._log_epoch(epoch, batch + 1 - first_batch, epoch_start_time,
                        start_time, start_step)
        if self._evaluation_due(epoch):
          accuracy = self._evaluate_and_log(epoch, step)
        if stop.signal_name and epoch < config.epochs - 1:
          # It came during the epoch-end save or evaluation: both are done.
          self._exit_on_signal(stop.signal_name, step)
    finally:
      if step_log:
        step_log.close()
    self.out(f"Final accuracy : {accuracy}")
    return accuracy

  def _evaluation_due(self, epoch):
    """The notebook evaluated after epoch 0, every 10th, and the last."""
    return epoch % self.config.eval_every == 0 or epoch == self.config.epochs - 1

  def _exit_on_signal(self, signal_name, step):
    """Says where the run stopped and exits 128 + the signal's number."""
    self.out(f"Got {signal_name}: saved a checkpoint at step {step}; run the "
             "same command again to continue.")
    raise SystemExit(128 + signal.Signals[signal_name].value)

  def _reconcile_metrics(self, step):
    """Makes metrics.jsonl agree with the restored step, after any crash.

    Records of steps after `step` are dropped (that work is redone), and if
    `step` ends an epoch whose evaluation was due but never written (the
    process died between the epoch-end checkpoint and the evaluation, or
    stopped on a signal there), it is evaluated now: the weights are exactly
    those the evaluation would have seen. So each due evaluation is in the
    file exactly once.
    """
    model_dir = self.config.model_dir
    dropped = run_dir.keep_metrics_up_to(model_dir, step)
    if dropped:
      self.out(f"Dropped {dropped} evaluation record(s) of steps after {step}"
               " from metrics.jsonl; training will redo them.")
    if step == 0 or step % self.steps_per_epoch:
      return
    epoch = step // self.steps_per_epoch - 1
    if self._evaluation_due(epoch) and not any(
        record.get("step") == step for record in run_dir.read_metrics(model_dir)):
      self.out(f"Evaluating epoch {epoch}, which the previous run ended "
               "before evaluating.")
      self._evaluate_and_log(epoch, step)

  def _save(self, step):
    """Checkpoints step `step`, unless the loss or weights went non-finite."""
    bad_step = int(self.first_nonfinite_step.numpy())
    if bad_step < 0 and not all(
        bool(tf.reduce_all(tf.math.is_finite(w))) for w in self.model.weights):
      bad_step = step - 1  # The loss was still finite; this update was not.
    if bad_step >= 0:
      last_good = self.checkpoints.last_good
      kept = (f"the last good checkpoint, {last_good}, is intact" if last_good
              else "no checkpoint had been written yet")
      raise TrainingError(
          f"The loss became NaN or infinite at step {bad_step + 1}; training "
          f"stopped and {kept}; lower --learning_rate.")
    self.checkpoints.save(step)

  def _log_epoch(self, epoch, steps_run, epoch_start_time, start_time,
                 start_step):
    """Prints one progress line: mean loss, images/sec, elapsed and ETA."""
    config = self.config
    now = time.monotonic()
    mean_loss = float(self.epoch_loss_sum.numpy()) / self.steps_per_epoch
    images_per_sec = (steps_run * config.batch_size) / max(
        now - epoch_start_time, 1e-9)
    step = int(self.global_step.numpy())
    seconds_per_step = (now - start_time) / max(step - start_step, 1)
    eta = seconds_per_step * (config.epochs * self.steps_per_epoch - step)
    self.out(f"epoch {epoch + 1}/{config.epochs}  loss {mean_loss:.4f}  "
             f"{images_per_sec:,.0f} images/sec  elapsed "
             f"{_hms(now - start_time)}  ETA {_hms(eta)}")

  def _evaluate_and_log(self, epoch, step):
    """Evaluates, prints the notebook's lines, appends to metrics.jsonl."""
    accuracy, per_class, predictions = self.evaluate()
    self.out(f"epoch : {epoch} and accuracy : {accuracy}")
    if self.config.print_predictions:
      self.out(np.array2string(predictions, threshold=20))
    names = self.dataset.class_names
    self.out("per-class accuracy: " + ", ".join(
        f"{name} {value:.3f}" for name, value in zip(names, per_class)))
    record = {"epoch": epoch, "step": step, "accuracy": accuracy,
              "per_class_accuracy": dict(zip(names, per_class.tolist())),
              "test_images": int(len(predictions)), "time": time.time()}
    run_dir.append_metric(self.config.model_dir, record)
    return accuracy

def _hms(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def config_as_dict(config):
  """The config as a plain dict (for logs and metadata)."""
  return dataclasses.asdict(config)
