"""The training loop: one traced train step, one traced eval step, checkpoints.

Public pieces:

* `Trainer(config, dataset)`: owns the model, the optimizer, the step counter
  and the checkpoint; `trainer.run()` trains to `config.epochs`, resuming from
  `config.model_dir` if a checkpoint is there.
* `Trainer.train_step(images_uint8, labels)`: one RMSProp step, traced once.
* `Trainer.train_steps(images_uint8, labels)`: consecutive steps over a run
  of batches, in one call (a loop inside the graph); `run()` uses it.
* `Trainer.predict(images_uint8)`: class ids, dropout off, traced once; with
  `config.ema_decay > 0` it uses the moving average of the weights.
  `Trainer.predict_in_batches` and `Trainer.evaluate` call it batch by batch.
* `epoch_order(seed, epoch, num_images, shuffle)`: the data order of an epoch.

How this maps to the notebook's TF1 loop:

    for i in range(50):                                  # for epoch in ...
      for start, end in zip(range(0, 50000, 128), ...):   # for batch in ...
        sess.run(train_op, feed_dict={X: ..., Y: ...,     #   train_step(...)
                                      p_keep_conv: 0.8, p_keep_hidden: 0.5})

Everything a restart needs is in TF variables that the checkpoint saves: the
weights, their moving average, the optimizer slots and `global_step`. The data
order of an epoch is a pure function of (seed, epoch) and each dropout mask a
pure function of (seed, global_step), so a restored run continues exactly
where it stopped, even in the middle of an epoch. The files around the
checkpoints (the lock, run_config.json, metrics.jsonl, steps.log) are
`tf_raw/run_dir.py`'s; saving and restoring them safely, `tf_raw/checkpoints.py`.
"""

import dataclasses
import math
import signal
import time

import numpy as np
import tensorflow as tf

from tf_raw import checkpoints
from tf_raw import model as model_lib
from tf_raw import optim
from tf_raw import run_dir

METRICS_FILE = run_dir.METRICS_FILE
# Training steps per call of `train_steps` (fewer at checkpoints and at the end
# of an epoch). One call per step costs a Python round trip and a host sync
# each time; a call per 20 steps keeps SIGINT answered within about 2 s on a
# 2-core CPU.
STEPS_PER_CALL = 20


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

  def __init__(self, config, dataset, out=print, hooks=()):
    """Builds every variable, the traced steps and the checkpoint manager.

    Args:
      config: a `config.TrainConfig`.
      dataset: a `data.Dataset` (uint8 NHWC images, int32 labels).
      out: where user-facing lines go (print by default; tests collect them).
      hooks: `hooks.Hook`s called at fixed points of `run()` (TensorBoard
        summaries, a progress bar).
    """
    self.config = config
    self.dataset = dataset
    self.out = out
    self.hooks = list(hooks)
    self.steps_per_epoch = steps_per_epoch(
        len(dataset.train_labels), config.batch_size, config.drop_remainder)
    if self.steps_per_epoch == 0:
      raise TrainingError(
          f"--batch_size={config.batch_size} is larger than the "
          f"{len(dataset.train_labels)} training images and --drop_remainder "
          "is set, so no step would run; lower --batch_size.")

    # Every variable is created here, once, before any tracing.
    self.model = model_lib.ConvNet(config.init_stddev, seed=config.seed,
                                   num_classes=dataset.num_classes)
    self.optimizer = optim.RMSProp(
        self.model.weights, config.learning_rate, config.decay,
        config.momentum, config.epsilon)
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                   name="global_step")
    # The weights' moving average, for evaluation: a second ConvNet with the
    # same seed, so it starts equal to the model.
    self.average_model = None
    if config.ema_decay > 0:
      self.average_model = model_lib.ConvNet(
          config.init_stddev, seed=config.seed, name="average_model",
          num_classes=dataset.num_classes)
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
    self.train_steps = tf.function(
        self._train_steps, input_signature=[image_spec, label_spec])
    self.predict = tf.function(self._predict, input_signature=[image_spec])
    self.predict_raw = tf.function(
        lambda images: self._predict(images, self.model),
        input_signature=[image_spec])

    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer,
        global_step=self.global_step, epoch_loss_sum=self.epoch_loss_sum)
    if self.average_model is not None:
      self.checkpoint.average_model = self.average_model
    # Atomic saves, the newest max_to_keep kept, a damaged newest one skipped.
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
          labels=tf.one_hot(labels, self.model.num_classes), logits=logits)
      # The mean over the global batch (what tf.distribute would need).
      loss = tf.nn.compute_average_loss(per_image)
    gradients = tape.gradient(loss, self.model.weights)
    self.optimizer.apply(gradients)
    if self.average_model is not None:
      optim.update_moving_average(self.average_model.weights,
                                  self.model.weights, config.ema_decay,
                                  self.global_step)

    self.first_nonfinite_step.assign(tf.where(
        tf.math.is_finite(loss) | (self.first_nonfinite_step >= 0),
        self.first_nonfinite_step, self.global_step))
    self.epoch_loss_sum.assign_add(loss)
    self.global_step.assign_add(1)
    return loss

  def _train_steps(self, images_uint8, labels):
    """`train_step` on consecutive batches of these images, in one call.

    Args:
      images_uint8: uint8 [K * B', 32, 32, 3]: K batches of the configured
        batch size B, one after the other (the last may be smaller).
      labels: int32 [K * B'].
    """
    batch_size = self.config.batch_size
    # AutoGraph turns this loop over a tensor into a tf.while_loop: the K
    # steps run back to back inside the graph, with no Python in between.
    for start in tf.range(0, tf.shape(labels)[0], batch_size):
      self.train_step(images_uint8[start:start + batch_size],
                      labels[start:start + batch_size])

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
    self.train_steps(self.dataset.train_images[index],
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

  @property
  def eval_model(self):
    """The weights evaluation and export use: the moving average, if kept."""
    return self.average_model or self.model

  def _predict(self, images_uint8, model=None):
    """int32 [B] predicted class ids for uint8 [B, 32, 32, 3]; no dropout."""
    model = model or self.eval_model
    logits = model(model_lib.scale_images(images_uint8))
    return tf.argmax(logits, axis=1, output_type=tf.int32)

  # ----------------------------------------------------------- evaluation --

  def predict_in_batches(self, images_uint8, predict=None):
    """int32 [N] class ids for uint8 [N, 32, 32, 3], eval_batch_size at a time.

    Batches bound the memory: TensorFlow's allocator keeps its peak, and one
    1,000-image batch's first conv output alone is 131 MB.

    Args:
      images_uint8: numpy uint8 [N, 32, 32, 3].
      predict: the traced prediction function (default `self.predict`).
    """
    batch = self.config.eval_batch_size
    return np.concatenate([
        (predict or self.predict)(images_uint8[start:start + batch]).numpy()
        for start in range(0, len(images_uint8), batch)])

  def evaluate(self, predict=None):
    """Predicts every test image in batches.

    Args:
      predict: the traced prediction function (default `self.predict`).

    Returns:
      (accuracy, per_class_accuracy [num_classes], predictions int32 [M]).
    """
    labels = self.dataset.test_labels
    predictions = self.predict_in_batches(self.dataset.test_images, predict)
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
    config, labels = self.config, self.dataset.train_labels
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
    step = start_step
    start_time = time.monotonic()
    self._call_hooks("begin", start_step)
    try:
      for epoch in range(start_step // self.steps_per_epoch, config.epochs):
        epoch_start_time = time.monotonic()
        order = epoch_order(config.seed, epoch, len(labels), config.shuffle)
        first_batch = step % self.steps_per_epoch
        if first_batch == 0:
          self.epoch_loss_sum.assign(0.0)
        batch = first_batch
        while batch < self.steps_per_epoch:
          num_steps = self._steps_in_next_call(step, batch)
          self.train_batches(order, batch, num_steps)
          if step_log:
            self._record_steps(step_log, order, epoch, batch, num_steps)
          batch += num_steps
          step = epoch * self.steps_per_epoch + batch
          self._call_hooks("after_step", step)
          if (stop.signal_name or batch == self.steps_per_epoch or
              (config.checkpoint_every_steps and
               step % config.checkpoint_every_steps == 0)):
            self._save(step)
          if stop.signal_name:
            # An epoch-end evaluation left undone is caught up on restart.
            self._exit_on_signal(stop.signal_name, step)
        self._log_epoch(epoch, batch - first_batch, epoch_start_time,
                        start_time, start_step)
        self._call_hooks("after_epoch", epoch, step)
        if self._evaluation_due(epoch):
          accuracy = self._evaluate_and_log(epoch, step)
          self._call_hooks("after_evaluate", epoch, step, accuracy)
        if stop.signal_name and epoch < config.epochs - 1:
          # It came during the epoch-end save or evaluation: both are done.
          self._exit_on_signal(stop.signal_name, step)
    finally:
      # Also on a signal or an error: event files and the step log are
      # flushed and closed up to the last step that ran.
      self._call_hooks("end", step)
      if step_log:
        step_log.close()
    self.out(f"Final accuracy : {accuracy}")
    return accuracy

  def _record_steps(self, step_log, order, epoch, first_batch, num_steps):
    """Appends one steps.log line per step of the last `train_batches` call."""
    batch_size = self.config.batch_size
    for batch in range(first_batch, first_batch + num_steps):
      step_log.record(epoch * self.steps_per_epoch + batch + 1, epoch, batch,
                      order[batch * batch_size:(batch + 1) * batch_size])

  def _call_hooks(self, method_name, *args):
    for hook in self.hooks:
      getattr(hook, method_name)(self, *args)

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
    if self.average_model is not None:
      # Also the raw weights, as the notebook evaluated them.
      record["raw_weights_accuracy"] = self.evaluate(self.predict_raw)[0]
      self.out(f"(moving-average weights; raw weights: "
               f"{record['raw_weights_accuracy']})")
    run_dir.append_metric(self.config.model_dir, record)
    return accuracy


def _hms(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def config_as_dict(config):
  """The config as a plain dict (for logs and metadata)."""
  return dataclasses.asdict(config)
