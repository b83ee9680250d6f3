"""TensorBoard event files for a training run, written by a `Trainer` hook.

    hook = summaries.TensorBoard(model_dir, log_every_steps=100)
    loop.Trainer(config, dataset, hooks=[hook]).run()
    # then: tensorboard --logdir=model_dir   (pip install tensorboard)

What lands where (two run folders, so TensorBoard draws train and test on one
chart per tag):

    model_dir/train/  loss             mean training loss (dropout on) since the
                                       previous point: every log_every_steps
                                       steps and at each epoch's end
                      images_per_sec   training speed over the same window
                      learning_rate    the optimizer's step size
                      accuracy         each epoch: a fixed sample of up to 1,000
                                       training images, dropout off
                      weights/w_c1..   histograms, once per epoch
                      gradients/w_c1.. histograms of one batch's gradients, once
                                       per epoch (a separate traced function)
                      samples          a labelled grid of training images
                      train_step       the graph of the traced train step
    model_dir/test/   accuracy         at every test evaluation

The x axis is the global step. Nothing here adds work to every train step:
values are read from TF variables every `log_every_steps` steps (one wait for
the device then) or at the end of an epoch.

The event files are what `tf.summary.scalar`, `histogram` and `image` write,
but those three live in the `tensorboard` package, which this project does not
need. So we call TF's own `tf.summary.write` with the same tensors and the same
metadata (plugin name and data class) that TensorBoard reads.
`tf.summary.trace_on`/`trace_export` (for the graph) are TF's own.
"""

import functools
import os
import time

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tf_raw import loop
from tf_raw.run_folder import run_dir
from tf_raw.tools import image_grid
from tf_raw import step as step_lib

TRAIN_RUN = "train"
TEST_RUN = "test"
HISTOGRAM_BUCKETS = 30  # TensorBoard's own default.
TRAIN_ACCURACY_SAMPLE = 1000  # Training images scored for train/accuracy.
GRID_COLUMNS = 4  # The samples image: a 4x4 grid of training images.
GRID_ROWS = 4


def _metadata(plugin_name, data_class):
  """The SummaryMetadata TensorBoard's plugins look for (version-0 content)."""
  return summary_pb2.SummaryMetadata(
      plugin_data=summary_pb2.SummaryMetadata.PluginData(
          plugin_name=plugin_name),
      data_class=data_class)


_SCALAR = _metadata("scalars", summary_pb2.DATA_CLASS_SCALAR)
_HISTOGRAM = _metadata("histograms", summary_pb2.DATA_CLASS_TENSOR)
_IMAGE = _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def write_scalar(tag, value, step):
  """tf.summary.scalar without tensorboard: a float32 scalar tensor."""
  tf.summary.write(tag, tf.cast(value, tf.float32), step=step,
                   metadata=_SCALAR)


def write_histogram(tag, values, step, buckets=HISTOGRAM_BUCKETS):
  """tf.summary.histogram without tensorboard.

  Args:
    tag: the chart's name.
    values: any numeric array; flattened.
    step: the x value.
    buckets: number of equal-width buckets between min and max.

  The tensor TensorBoard reads is float64 [buckets, 3]: each row is
  (left edge, right edge, count).
  """
  values = np.asarray(values, np.float64).ravel()
  counts, edges = np.histogram(values, bins=buckets)
  table = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
  tf.summary.write(tag, tf.constant(table), step=step, metadata=_HISTOGRAM)


def write_image(tag, image_uint8, step, description=""):
  """tf.summary.image without tensorboard, for one uint8 [H, W, 3] image.

  The tensor TensorBoard reads is a string vector: width, height (as decimal
  strings), then each image as PNG bytes. `description` (Markdown) is shown
  under the image.
  """
  height, width = image_uint8.shape[:2]
  png = tf.io.encode_png(image_uint8)
  metadata = summary_pb2.SummaryMetadata()
  metadata.CopyFrom(_IMAGE)
  metadata.summary_description = description
  tf.summary.write(tag, tf.stack([str(width), str(height), png]), step=step,
                   metadata=metadata)


def _events_reported(hook_method):
  """A failed event write (disk full, a file named train/ in the way) becomes
  one `RunDirError` sentence; the checkpoints are not affected by it."""
  @functools.wraps(hook_method)
  def reported(self, *args):
    try:
      return hook_method(self, *args)
    except (tf.errors.OpError, OSError) as error:
      reason = (error.strerror if isinstance(error, OSError) and error.strerror
                else run_dir.one_line(error))
      raise run_dir.RunDirError(
          f"Cannot write TensorBoard events in {self.model_dir} ({reason}); "
          "free some disk space, or move away a file named train or test "
          "there, then run the same command again (the newest checkpoint is "
          "intact).") from error
  return reported


class TensorBoard(loop.Hook):
  """A `Trainer` hook that writes model_dir/train and model_dir/test events."""

  def __init__(self, model_dir, log_every_steps=100):
    """Creates nothing on disk yet (the writers open at `begin`).

    Args:
      model_dir: the run's folder.
      log_every_steps: also write loss, speed and learning rate every this
        many steps (0: only at the end of each epoch).
    """
    self.model_dir = model_dir
    self.log_every_steps = log_every_steps
    self.train_writer = None
    self.test_writer = None
    self._gradients = None
    self._tracing = False
    self._window = None  # (epoch, batches done, loss sum, time) at last point.

  # ------------------------------------------------------------ the hooks --

  @_events_reported
  def begin(self, trainer, step):
    self.train_writer = tf.summary.create_file_writer(
        os.path.join(self.model_dir, TRAIN_RUN))
    self.test_writer = tf.summary.create_file_writer(
        os.path.join(self.model_dir, TEST_RUN))
    with self.train_writer.as_default():
      self._write_samples(trainer.dataset, step)
    # Records the graph of whatever function runs next: the first train step.
    tf.summary.trace_on(graph=True, profiler=False)
    self._tracing = True
    self._start_window(trainer, step)

  @_events_reported
  def after_step(self, trainer, step):
    if self._tracing:
      with self.train_writer.as_default():
        tf.summary.trace_export("train_step", step=step)
      self._tracing = False
    if self.log_every_steps and step % self.log_every_steps == 0:
      self._write_window(trainer, step)

  @_events_reported
  def after_epoch(self, trainer, epoch, step):
    epoch_and_batches = ((step - 1) // trainer.steps_per_epoch,
                         _batches_done(trainer, step))
    if self._window[:2] != epoch_and_batches:  # Not written at this step yet.
      self._write_window(trainer, step)
    with self.train_writer.as_default():
      write_scalar("accuracy", self._train_accuracy(trainer), step)
      for weight in trainer.learner.model.weights:
        write_histogram("weights/" + _short_name(weight), weight.numpy(), step)
      for weight, gradient in zip(trainer.learner.model.weights,
                                  self._one_batch_gradients(trainer)):
        write_histogram("gradients/" + _short_name(weight), gradient.numpy(),
                        step)
    self.train_writer.flush()
    self._restart_clock()

  @_events_reported
  def after_evaluate(self, trainer, epoch, step, record):
    if self.test_writer is None:
      return  # An evaluation caught up at restore, before `begin`.
    with self.test_writer.as_default():
      write_scalar("accuracy", record["accuracy"], step)
    self.test_writer.flush()
    self._restart_clock()

  @_events_reported
  def end(self, trainer, step):
    for writer in (self.train_writer, self.test_writer):
      if writer is not None:  # None: `begin` failed or never ran.
        writer.close()

  # ------------------------------------------------------- scalar windows --

  def _start_window(self, trainer, step):
    epoch = step // trainer.steps_per_epoch
    batches = step - epoch * trainer.steps_per_epoch
    # A run resumed mid-epoch: epoch_loss_sum (checkpointed) already holds the
    # losses of this epoch's first `batches` steps.
    loss_sum = float(trainer.learner.epoch_loss_sum.numpy()) if batches else 0.0
    self._window = (epoch, batches, loss_sum, time.monotonic())

  def _restart_clock(self):
    """Leaves the time spent on summaries and evaluation out of images/sec."""
    self._window = (*self._window[:3], time.monotonic())

  def _write_window(self, trainer, step):
    """Writes the mean loss and speed since the previous point (one read)."""
    epoch = (step - 1) // trainer.steps_per_epoch
    batches = _batches_done(trainer, step)
    window_epoch, window_batches, window_loss_sum, window_time = self._window
    if window_epoch != epoch:  # The loop reset epoch_loss_sum at epoch start.
      window_batches, window_loss_sum = 0, 0.0
    loss_sum = float(trainer.learner.epoch_loss_sum.numpy())  # Waits for the step.
    now = time.monotonic()
    steps = batches - window_batches
    with self.train_writer.as_default():
      write_scalar("loss", (loss_sum - window_loss_sum) / steps, step)
      write_scalar("images_per_sec",
                   steps * trainer.config.batch_size / max(now - window_time,
                                                           1e-9), step)
      write_scalar("learning_rate", trainer.learner.optimizer.learning_rate, step)
    self.train_writer.flush()
    self._window = (epoch, batches, loss_sum, now)

  # ------------------------------------------------ once-per-epoch values --

  def _train_accuracy(self, trainer):
    images = trainer.dataset.train_images[:TRAIN_ACCURACY_SAMPLE]
    labels = trainer.dataset.train_labels[:TRAIN_ACCURACY_SAMPLE]
    return float(np.mean(trainer.predict_in_batches(images) == labels))

  def _one_batch_gradients(self, trainer):
    """The gradients of the training loss on the first training batch.

    A traced function of its own, built on first use, so the train step is
    untouched and pays nothing. Dropout is on, as in training, with the masks
    of the next step (seed, global_step), so the picture is the gradient the
    optimizer sees, not a dropout-free one.
    """
    config, learner = trainer.config, trainer.learner
    if self._gradients is None:
      def gradients(images_uint8, labels):
        with tf.GradientTape() as tape:
          loss = step_lib.loss(
              learner.model, images_uint8, labels, config.keep_prob_conv,
              config.keep_prob_hidden,
              step_lib.dropout_seed(config.seed, learner.global_step))
        return tape.gradient(loss, learner.model.weights)
      self._gradients = tf.function(gradients, input_signature=[
          step_lib.IMAGE_SPEC, step_lib.LABEL_SPEC])
    batch = slice(0, config.batch_size)
    return self._gradients(trainer.dataset.train_images[batch],
                           trainer.dataset.train_labels[batch])

  @staticmethod
  def _write_samples(dataset, step):
    count = min(GRID_COLUMNS * GRID_ROWS, len(dataset.train_labels))
    captions = [dataset.class_names[label]
                for label in dataset.train_labels[:count]]
    grid = image_grid.labelled_grid(dataset.train_images[:count], captions,
                                    columns=GRID_COLUMNS)
    # The class names as text too (the image has them only with Pillow).
    write_image("samples", grid, step, description="<pre>" + (
        image_grid.caption_rows(captions, GRID_COLUMNS)) + "</pre>")


def _batches_done(trainer, step):
  """Steps finished in the current epoch (1..steps_per_epoch) after `step`."""
  return (step - 1) % trainer.steps_per_epoch + 1


def _short_name(variable):
  """'conv_net/w_c1:0' -> 'w_c1'."""
  return variable.name.split(":")[0].split("/")[-1]
