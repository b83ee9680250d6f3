"""Trains the notebook's TF1 graph and the TF2 code in lockstep, comparing them.

The library behind `python -m tf_raw.tf1.compare` (see that program for usage):

    run(compare_config, dataset, out=print) -> largest differences
    DivergenceError, onednn_enabled(), KERAS_EPSILON

Both sides start from the same weights (`model.ConvNet(seed=...)`) and take
the same batches in the same order (`loop.epoch_order`). The TF2 side is
the real `step.Learner.train_step` (tf.function, GradientTape,
`optim.RMSProp`); the TF1 side is `tf1_graph.TF1Graph`, the notebook's graph
run by `Session.run` with a `feed_dict`.
"""

import dataclasses
import tempfile

import numpy as np
from tensorflow.python.util import _pywrap_util_port  # oneDNN: no public API.

from tf_raw import loop
from tf_raw.tf1 import tf1_graph

# What --trap=keras_rmsprop puts into the TF2 side: Keras's RMSprop starts its
# mean square at zeros and adds epsilon 1e-7 (Keras 3: inside the square root,
# as here; Keras 2 added it outside).
KERAS_EPSILON = 1e-7


class DivergenceError(Exception):
  """The two implementations differ by more than the tolerance."""


def onednn_enabled():
  """Whether TensorFlow's oneDNN CPU kernels are on in this process.

  TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it starts, so the answer
  cannot change within a process (tf_raw sets it to 1 unless it is set).
  """
  return bool(_pywrap_util_port.IsMklEnabled())


def _max_difference(arrays_a, arrays_b):
  return max(float(abs(a - b).max()) for a, b in zip(arrays_a, arrays_b))


def run(config, dataset, out=print):
  """Trains both implementations in lockstep and reports their differences.

  Args:
    config: a `config.CompareConfig`.
    dataset: a `data.Dataset`.
    out: where the lines go.

  Returns:
    dict with the largest differences seen: "loss", "weights", "slots",
    "predictions_agree" (fraction of test images the raw weights of both
    sides predict alike) and "moving_average_differs" (how many test images
    the TF2 side's moving-average weights predict differently from its raw
    ones; None without a moving average).

  Raises:
    DivergenceError: a loss, weight or slot differs by more than
      config.tolerance.
  """
  recipe = config.train
  labels = dataset.train_labels
  steps_per_epoch = loop.steps_per_epoch(
      len(labels), recipe.batch_size, recipe.drop_remainder)
  with tempfile.TemporaryDirectory() as scratch_dir:
    trainer = _tf2_trainer(config, dataset, scratch_dir)
    tf1 = tf1_graph.TF1Graph(
        [w.numpy() for w in trainer.learner.model.weights], recipe.learning_rate,
        recipe.decay, recipe.momentum, recipe.epsilon, seed=recipe.seed)
    try:
      summary = _lockstep(config, dataset, trainer, tf1, steps_per_epoch,
                          out)
    finally:
      tf1.close()
  return summary


def _tf2_trainer(config, dataset, scratch_dir):
  """The real TF2 Trainer (checkpoints into scratch_dir), trap included."""
  recipe = dataclasses.replace(config.train, model_dir=scratch_dir)
  if config.trap == "keras_rmsprop":
    recipe = dataclasses.replace(recipe, epsilon=KERAS_EPSILON)
  trainer = loop.Trainer(recipe, dataset, out=lambda line: None)
  if config.trap == "keras_rmsprop":
    for mean_square in trainer.learner.optimizer.mean_squares:
      mean_square.assign(np.zeros(mean_square.shape, np.float32))
  return trainer


def _lockstep(config, dataset, trainer, tf1, steps_per_epoch, out):
  """The body of `run`: steps both, prints, compares; returns the summary."""
  recipe = config.train
  images, labels = dataset.train_images, dataset.train_labels
  dropout = ("off" if recipe.keep_prob_conv == recipe.keep_prob_hidden == 1
             else f"ON (keep {recipe.keep_prob_conv:g} and "
             f"{recipe.keep_prob_hidden:g}: TF1's stateful and TF2's "
             "stateless masks differ, so expect divergence)")
  out("TF2: step.Learner.train_step (tf.function, GradientTape); "
      "TF1: tf1_graph.TF1Graph (Session.run, feed_dict).")
  out(f"Same initial weights (seed {recipe.seed}), same {config.steps} "
      f"batches of {recipe.batch_size} {recipe.dataset} images; dropout "
      f"{dropout}; oneDNN {'on' if onednn_enabled() else 'off'}.")
  if config.trap != "none":
    out(f"--trap={config.trap}: the TF2 side starts RMSProp's mean square "
        f"at zeros with epsilon {KERAS_EPSILON:g}, as Keras's RMSprop does.")
  out(f"{'step':>5}   {'loss TF2':<10}  {'loss TF1':<10}  "
      f"{'|loss diff|':<11}  max |weight diff|")

  worst = {"loss": (0.0, 0), "weights": (0.0, 0)}
  for step in range(1, config.steps + 1):
    epoch, batch = divmod(step - 1, steps_per_epoch)
    order = loop.epoch_order(recipe.seed, epoch, len(labels),
                                 recipe.shuffle)
    index = order[batch * recipe.batch_size:
                  (batch + 1) * recipe.batch_size]
    loss_tf2 = float(trainer.learner.train_step(images[index], labels[index]))
    loss_tf1 = tf1.train_step(images[index], labels[index],
                              recipe.keep_prob_conv, recipe.keep_prob_hidden)
    if not (np.isfinite(loss_tf2) and np.isfinite(loss_tf1)):
      # NaN compares false with everything: it would pass any tolerance.
      raise DivergenceError(
          f"the loss became NaN or infinite at step {step} (TF2 {loss_tf2:g}, "
          f"TF1 {loss_tf1:g}), so the two implementations cannot be compared; "
          "lower --learning_rate.")
    loss_diff = abs(loss_tf2 - loss_tf1)
    weight_diff = _max_difference(
        [w.numpy() for w in trainer.learner.model.weights], tf1.weights())
    if not np.isfinite(weight_diff):
      raise DivergenceError(
          f"a weight became NaN or infinite at step {step}, so the two "
          "implementations cannot be compared; lower --learning_rate.")
    worst["loss"] = max(worst["loss"], (loss_diff, step))
    worst["weights"] = max(worst["weights"], (weight_diff, step))
    out(f"{step:>5}   {loss_tf2:<10.7f}  {loss_tf1:<10.7f}  "
        f"{_g(loss_diff):<11}  {_g(weight_diff)}")

  slots = tf1.slots()
  rms_diff = _max_difference(
      [v.numpy() for v in trainer.learner.optimizer.mean_squares], slots["rms"])
  momentum_diff = _max_difference(
      [v.numpy() for v in trainer.learner.optimizer.moments], slots["momentum"])
  out(f"RMSProp slots after step {config.steps}: max |rms diff| "
      f"{_g(rms_diff)}, max |momentum diff| {_g(momentum_diff)}.")

  test_images = dataset.test_images
  batch = recipe.eval_batch_size
  # Raw weights on both sides: the TF1 graph has no moving average, and
  # `learner.predict` would use the TF2 side's (`Learner.eval_model`).
  predictions_tf2 = trainer.predict_in_batches(test_images,
                                               trainer.learner.predict_raw)
  predictions_tf1 = tf1.predict(test_images, batch_size=batch)
  agree = int(np.sum(predictions_tf2 == predictions_tf1))
  out(f"Test predictions (raw weights on both sides): {agree} of "
      f"{len(test_images)} agree.")
  moving_average_differs = None
  if trainer.learner.average_model is not None:
    # What `compare` used to set side by side by mistake: evaluation's
    # weights (the moving average) against TF1's raw ones.
    moving_average_differs = int(np.sum(
        trainer.predict_in_batches(test_images) != predictions_tf2))
    out(f"(The TF2 side's moving average of its weights, which evaluation "
        f"uses, predicts {moving_average_differs} of {len(test_images)} "
        "differently; the TF1 graph keeps none.)")

  differences = [worst["loss"][0], worst["weights"][0], rms_diff,
                 momentum_diff]
  # NaN (weights that overflowed) must fail, not slip past every comparison.
  largest = (max(differences) if np.all(np.isfinite(differences))
             else float("nan"))
  summary = {"loss": worst["loss"][0], "weights": worst["weights"][0],
             "slots": max(rms_diff, momentum_diff),
             "predictions_agree": agree / len(test_images),
             "moving_average_differs": moving_average_differs}
  if not np.isfinite(largest) or largest > config.tolerance:
    loss_diff, loss_step = worst["loss"]
    weight_diff, weight_step = worst["weights"]
    raise DivergenceError(
        f"the two implementations diverged beyond --tolerance="
        f"{config.tolerance:g}: loss by up to {loss_diff:.3g} (step "
        f"{loss_step}), weights by up to {weight_diff:.3g} (step "
        f"{weight_step}), slots by up to {max(rms_diff, momentum_diff):.3g}"
        + ("" if dropout == "off" and config.trap == "none" else
           "; expected here, see the notes above") + ".")
  out(f"The two implementations agree at all {config.steps} steps: "
      + ("bit-identical." if largest == 0 else
         f"largest difference {largest:.3g} <= --tolerance="
         f"{config.tolerance:g}."))
  return summary


def _g(value):
  """0 as "0", anything else in 3 significant digits."""
  return "0" if value == 0 else f"{value:.3g}"


def keras_rmsprop_first_step(recipe, images_uint8, labels):
  """Measures the first step of TF1's RMSProp and of Keras's real RMSprop.

  Both start from `model.ConvNet(seed=recipe.seed)` and take one step on the
  same batch (dropout off), with the recipe's learning rate and decay:
  `optim.RMSProp` (TF1's rule, mean square from ones, epsilon 1e-10) and
  `keras.optimizers.RMSprop` (mean square from zeros, its default epsilon
  1e-7, inside the square root in Keras 3).

  Args:
    recipe: a `config.TrainConfig` (seed, init_stddev, learning_rate, decay).
    images_uint8: uint8 [B, 32, 32, 3], one batch.
    labels: int32 [B].

  Returns:
    {weight name: {"gradient": median |g|, "tf1": median |step| of TF1's
    rule, "keras": median |step| of Keras's}} (medians over the weight's
    entries).
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tf_raw import model as model_lib  # pylint: disable=g-import-not-at-top
  from tf_raw import optim  # pylint: disable=g-import-not-at-top
  from tf_raw import step as step_lib  # pylint: disable=g-import-not-at-top

  step_lib.check_uint8(images_uint8)
  net = model_lib.ConvNet(recipe.init_stddev, seed=recipe.seed)
  with tf.GradientTape() as tape:
    batch_loss = step_lib.loss(net, images_uint8, labels)
  gradients = tape.gradient(batch_loss, net.weights)
  # Each optimizer updates a copy that starts at ZERO, so the copy's new
  # value is exactly minus its step: added to the real weights (~1e-2), a
  # TF1 step below half a float32 ulp (~5e-10) would not show at all.
  tf1_weights = [tf.Variable(tf.zeros_like(w)) for w in net.weights]
  keras_weights = [tf.Variable(tf.zeros_like(w)) for w in net.weights]
  optim.RMSProp(tf1_weights, recipe.learning_rate, recipe.decay).apply(
      gradients)
  keras.optimizers.RMSprop(
      learning_rate=recipe.learning_rate, rho=recipe.decay).apply_gradients(
          zip(gradients, keras_weights))
  result = {}
  for name, grad, tf1_w, keras_w in zip(
      model_lib.WEIGHT_SHAPES, gradients, tf1_weights, keras_weights):
    result[name] = {
        "gradient": float(np.median(np.abs(grad.numpy()))),
        "tf1": float(np.median(np.abs(tf1_w.numpy()))),
        "keras": float(np.median(np.abs(keras_w.numpy())))}
  return result
