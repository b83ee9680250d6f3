"""One training step, traced: the loss, the gradients, the update.

Public pieces:

* `loss(model, images_uint8, labels, ...)`: the notebook's loss, the one
  place it is written (the step, TensorBoard's gradients and `compare` call it).
* `Learner(config, num_classes)`: every variable a step touches (the model,
  the optimizer's slots, the step counter, the weights' moving average),
  created once, and the traced functions that touch them:
  `train_step`, `train_steps` (several steps in one call), `predict`
  (moving-average weights when kept) and `predict_raw` (the raw weights).
  Each refuses images that are not uint8 (`check_uint8`): the signature
  would otherwise cast floats in [0, 1] to 0s and 1s without a word.
  Created inside a `tf.distribute` strategy's scope, the same Learner runs
  each step on every replica (`_replica_step`, tf_raw/distribute.py).

How this maps to the notebook's TF1 graph:

    cost = tf.reduce_mean(                            # loss(...)
        tf.nn.softmax_cross_entropy_with_logits(logits=py_x, labels=Y))
    train_op = tf.train.RMSPropOptimizer(0.001, 0.9).minimize(cost)
    sess.run(train_op, feed_dict={X: ..., Y: ...})    # learner.train_step(...)

In TF1, `minimize` added the gradient ops to the graph and `sess.run` ran
them. In TF2 the Python function below *is* the step: `tf.GradientTape`
records the forward pass, `tape.gradient` differentiates it, and
`tf.function` traces the whole thing once into a graph. The
`input_signature` (uint8 images of any batch size, int32 labels) is why it
traces once: without it, the last, smaller batch of each epoch would trace a
second graph.
"""

import numpy as np
import tensorflow as tf

from tf_raw import augment as augment_lib
from tf_raw import distribute
from tf_raw import model as model_lib
from tf_raw import optim

IMAGE_SPEC = tf.TensorSpec([None, *model_lib.IMAGE_SHAPE], tf.uint8)
LABEL_SPEC = tf.TensorSpec([None], tf.int32)


def loss(model, images_uint8, labels, keep_prob_conv=1.0,
         keep_prob_hidden=1.0, dropout_seed=None, global_batch_size=None,
         dropout_rows=None):
  """The notebook's loss: mean softmax cross-entropy of the logits.

  Args:
    model: a `model.ConvNet`.
    images_uint8: uint8 [B, 32, 32, 3].
    labels: int32 [B], class ids (one-hot encoded here, as the notebook's Y).
    keep_prob_conv, keep_prob_hidden, dropout_seed, dropout_rows: see
      `ConvNet.__call__`.
    global_batch_size: None on one device (the mean over these B images); on
      a replica, the images of the whole step, which the sum over these rows
      is divided by (tf_raw/distribute.py, rule 2).

  Returns:
    float32 scalar: the mean over the batch (on a replica: its share of it).
  """
  images = model_lib.scale_images(images_uint8)             # (B, 32, 32, 3)
  logits = model(images, keep_prob_conv, keep_prob_hidden,
                 dropout_seed, dropout_rows)                 # (B, classes)
  per_image = tf.nn.softmax_cross_entropy_with_logits(
      labels=tf.one_hot(labels, model.num_classes), logits=logits)  # (B,)
  # sum(per_image) / global_batch_size: the mean on one device.
  return tf.nn.compute_average_loss(per_image,
                                    global_batch_size=global_batch_size)


def dropout_seed(seed, step):
  """int64 [2]: the seed of step `step`'s dropout masks, from the run's seed."""
  return tf.stack([tf.constant(seed, tf.int64), step])


def check_uint8(images):
  """Raises TypeError unless `images` (array or tensor) holds uint8 pixels.

  A `tf.function` with an `input_signature` converts its arguments to the
  signature's dtype: float pixels in [0, 1] would silently become 0s and 1s,
  and the step would train or predict on garbage without an error.
  """
  dtype = getattr(images, "dtype", None)
  if dtype is None:
    dtype = np.asarray(images).dtype
  if tf.as_dtype(dtype) != tf.uint8:
    raise TypeError(
        f"images must be uint8 pixels in 0..255, not {tf.as_dtype(dtype).name} "
        "(the traced step would cast floats in [0, 1] to 0s and 1s); pass the "
        "uint8 images, e.g. np.round(images * 255).astype(np.uint8).")


class Uint8Only:
  """A traced function of (images, ...) that refuses non-uint8 images.

  Everything else (`get_concrete_function`, `experimental_get_tracing_count`,
  ...) is the wrapped `tf.function`'s.
  """

  def __init__(self, function):
    self.function = function

  def __call__(self, images_uint8, *args):
    check_uint8(images_uint8)
    return self.function(images_uint8, *args)

  def __getattr__(self, name):
    return getattr(self.function, name)


class Learner(tf.Module):
  """The variables of a run and the traced steps that update them.

  Attributes:
    model: the `model.ConvNet` being trained.
    optimizer: its `optim.RMSProp` (TF1's RMSPropOptimizer).
    global_step: int64 variable, steps taken; it keys the dropout masks.
    average_model: a second ConvNet holding the weights' moving average (the
      weights evaluation uses), or None with config.ema_decay == 0.
    epoch_loss_sum: float32 variable, the sum of this epoch's step losses
      (read once per epoch, so no step waits for Python).
    first_nonfinite_step: int64 variable, the first step whose loss was NaN or
      infinite, or -1 (checked at each checkpoint, not at each step).
  """

  def __init__(self, config, num_classes=model_lib.NUM_CLASSES,
               total_steps=None):
    """Creates every variable, once, before anything is traced.

    Args:
      config: a `config.TrainConfig` (the recipe fields are used).
      num_classes: outputs of the network.
      total_steps: the run's steps (epochs * steps per epoch), which
        --lr_schedule=cosine spreads its curve over; None: 1 (tests).
    """
    super().__init__(name="learner")
    self.config = config
    # Built inside `strategy.scope()`, every variable below becomes one copy
    # per replica, and the step runs on all of them (tf_raw/distribute.py).
    # None: the default strategy, one device.
    self.strategy = None
    if tf.distribute.has_strategy():
      self.strategy = tf.distribute.get_strategy()
    self.total_steps = max(total_steps or 1, 1)
    # config.precision: the layers' dtype (model.py's docstring); the
    # variables below, the slots, the average and the loss stay float32.
    self.model = model_lib.ConvNet(config.init_stddev, seed=config.seed,
                                   num_classes=num_classes,
                                   precision=config.precision)
    self.optimizer = optim.RMSProp(
        self.model.weights, config.learning_rate, config.decay,
        config.momentum, config.epsilon)
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                   name="global_step")
    # The same seed, so the average starts equal to the model.
    self.average_model = None
    if config.ema_decay > 0:
      self.average_model = model_lib.ConvNet(
          config.init_stddev, seed=config.seed, name="average_model",
          num_classes=num_classes, precision=config.precision)
    self.epoch_loss_sum = tf.Variable(0.0, trainable=False,
                                      name="epoch_loss_sum")
    self.first_nonfinite_step = tf.Variable(
        -1, dtype=tf.int64, trainable=False, name="first_nonfinite_step")

    # Each traced function refuses non-uint8 images before the signature
    # could cast them (see `Uint8Only`).
    self.train_step = Uint8Only(tf.function(
        self._train_step, input_signature=[IMAGE_SPEC, LABEL_SPEC]))
    self.train_steps = Uint8Only(tf.function(
        self._train_steps, input_signature=[IMAGE_SPEC, LABEL_SPEC]))
    self.predict = Uint8Only(tf.function(
        lambda images: self._predict(images, self.eval_model),
        input_signature=[IMAGE_SPEC]))
    self.predict_raw = Uint8Only(tf.function(
        lambda images: self._predict(images, self.model),
        input_signature=[IMAGE_SPEC]))

  @property
  def eval_model(self):
    """The weights evaluation and export use: the moving average, if kept."""
    return self.average_model or self.model

  def _train_step(self, images_uint8, labels):
    """One RMSProp step on a batch; returns its mean loss (float32 scalar).

    Args:
      images_uint8: uint8 [B, 32, 32, 3].
      labels: int32 [B], class ids.
    """
    if self.strategy is None:  # One device: the lesson's step, as it is.
      batch_loss = self._replica_step(images_uint8, labels)
    else:
      # Every replica runs _replica_step on its rows (tf_raw/distribute.py);
      # each returns its share of the mean loss, and their SUM is the mean.
      per_replica_loss = self.strategy.run(self._replica_step,
                                           args=(images_uint8, labels))
      batch_loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                        per_replica_loss, axis=None)

    # Bookkeeping in the graph: no step waits for Python to read a value.
    self.first_nonfinite_step.assign(tf.where(
        tf.math.is_finite(batch_loss) | (self.first_nonfinite_step >= 0),
        self.first_nonfinite_step, self.global_step))
    self.epoch_loss_sum.assign_add(batch_loss)
    self.global_step.assign_add(1)
    return batch_loss

  def _replica_step(self, images_uint8, labels):
    """The forward pass, the gradients and the update, on one replica.

    On one device the replica is the device and its rows the whole batch.
    Under a strategy each replica takes its rows of the global batch, and
    the gradients are summed across replicas before every copy of the
    weights takes the same update (the rules of tf_raw/distribute.py).

    Returns:
      float32 scalar: this replica's share of the batch's mean loss.
    """
    config = self.config
    replica = tf.distribute.get_replica_context()
    rows = global_batch_size = None
    if replica.num_replicas_in_sync > 1:
      global_batch_size = tf.shape(labels)[0]
      first, end = distribute.replica_rows(replica.replica_id_in_sync_group,
                                           replica.num_replicas_in_sync,
                                           global_batch_size)
      images_uint8, labels = images_uint8[first:end], labels[first:end]
      rows = (first, global_batch_size)
    if config.augment == augment_lib.CROP_FLIP:
      # Each step's crops and mirrors: a pure function of (seed, step), as
      # the dropout masks are. Training only; evaluation sees the images.
      images_uint8 = augment_lib.crop_flip(
          images_uint8, augment_lib.augment_seed(config.seed,
                                                 self.global_step), rows)
    # Each step's dropout masks: a pure function of (seed, step), so a
    # restarted run draws exactly the masks an uninterrupted one would.
    seed = dropout_seed(config.seed, self.global_step)

    def loss_and_gradients():
      # The tape records the ops on the variables it watches (every
      # trainable tf.Variable it sees read): the five weights, not the images.
      with tf.GradientTape() as tape:
        batch_loss = loss(self.model, images_uint8, labels,
                          config.keep_prob_conv, config.keep_prob_hidden, seed,
                          global_batch_size, rows)
      return batch_loss, tape.gradient(batch_loss, self.model.weights)

    if rows is None:
      batch_loss, gradients = loss_and_gradients()
    else:
      # A replica with no rows (fewer images than replicas) adds nothing,
      # but still joins the all-reduce below (Conv2D refuses empty batches).
      batch_loss, gradients = tf.cond(
          tf.shape(labels)[0] > 0, loss_and_gradients,
          lambda: (tf.constant(0.0),
                   [tf.zeros_like(w) for w in self.model.weights]))
      # Rule 3: every replica gets the sum of all replicas' gradients.
      gradients = replica.all_reduce(tf.distribute.ReduceOp.SUM, gradients)

    learning_rate = None  # --lr_schedule=constant: the notebook's rate.
    if config.lr_schedule == "cosine":
      learning_rate = optim.cosine_rate(config.learning_rate,
                                        self.global_step, self.total_steps)
    # ResourceApplyRMSProp, weight by weight (on this replica's copies).
    self.optimizer.apply(gradients, learning_rate)
    if self.average_model is not None:
      optim.update_moving_average(self.average_model.weights,
                                  self.model.weights, config.ema_decay,
                                  self.global_step)
    return batch_loss

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

  @staticmethod
  def _predict(images_uint8, model):
    """int32 [B] predicted class ids for uint8 [B, 32, 32, 3]; no dropout."""
    logits = model(model_lib.scale_images(images_uint8))
    return tf.argmax(logits, axis=1, output_type=tf.int32)
