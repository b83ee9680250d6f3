"""The benchmark's TensorFlow peers: the 2018 TF1 graph and Keras `model.fit`.

Both build the notebook's network (three conv3x3-ReLU-maxpool-dropout blocks,
dropout on the 2048 flattened features, a 625-unit ReLU layer with dropout,
10 logits; no biases; weights from normal(stddev=0.01)) and train it with
RMSProp(0.001, decay 0.9) on batches of 128, each in its own idiom:

* `tf1_graph_rates`: the notebook's graph itself (`tf1_graph.TF1Graph`:
  placeholders, `Session.run(train_op, feed_dict=...)`) on float32 images and
  one-hot labels prepared up front, as the notebook did.
* `keras_fit_rates`: a `keras.Sequential` trained by `model.fit` from a
  `tf.data` pipeline (batch, repeat, prefetch), timed by a callback; with
  precision="mixed_bfloat16", under Keras's `mixed_bfloat16` policy (float32
  variables, bfloat16 layers: what `--precision=mixed_bfloat16` does).

Each takes a `timing.Turns` and plain numbers, warms up, then times one
repeat per turn the parent gives it; `worker.py` chooses the settings and
the process environment.
"""

import numpy as np
import tensorflow as tf

from tf_raw import model as model_lib
from tf_raw.tf1 import tf1_graph

KEEP_PROB_CONV = 0.8
KEEP_PROB_HIDDEN = 0.5
LEARNING_RATE = 0.001
DECAY = 0.9
INIT_STDDEV = 0.01


def random_pool(num_images, seed=0):
  """uint8 [N, 32, 32, 3] images and int32 [N] labels: the data to train on.

  The values do not change the speed of any op here, so random data stands in
  for CIFAR-10 (same shapes and dtypes).
  """
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_images, *model_lib.IMAGE_SHAPE),
                        dtype=np.uint8)
  labels = rng.integers(0, model_lib.NUM_CLASSES, num_images, dtype=np.int32)
  return images, labels


def tf1_graph_rates(turns, warmup_steps, pool_batches=20):
  """`turns.serve` of the notebook's TF1 graph, fed like the notebook."""
  batch_size = turns.batch_size
  images, labels = random_pool(pool_batches * batch_size)
  # The notebook scaled and one-hot encoded the whole set before training.
  float_images = tf1_graph.to_float_images(images)
  one_hot = tf1_graph.to_one_hot(labels)
  notebook = tf1_graph.TF1Graph(seed=0)
  batch = [0]

  def run_steps(num_steps):
    for _ in range(num_steps):
      start = batch[0] % pool_batches * batch_size
      # The notebook's loop: sess.run(train_op, feed_dict=...), nothing else.
      notebook.session.run(notebook.train_op, feed_dict={
          notebook.X: float_images[start:start + batch_size],
          notebook.Y: one_hot[start:start + batch_size],
          notebook.p_keep_conv: KEEP_PROB_CONV,
          notebook.p_keep_hidden: KEEP_PROB_HIDDEN})
      batch[0] += 1

  try:
    turns.serve(run_steps, warmup_steps)
  finally:
    notebook.close()
  return {}


def keras_model():
  """The notebook's network as a `keras.Sequential` (no biases)."""
  import keras  # pylint: disable=g-import-not-at-top
  layers = keras.layers
  initializer = keras.initializers.RandomNormal(stddev=INIT_STDDEV)

  def conv_block(filters):
    return [layers.Conv2D(filters, 3, padding="same", activation="relu",
                          use_bias=False, kernel_initializer=initializer),
            layers.MaxPooling2D(2, padding="same"),
            layers.Dropout(1 - KEEP_PROB_CONV)]

  return keras.Sequential([
      keras.Input(model_lib.IMAGE_SHAPE),
      *conv_block(32), *conv_block(64), *conv_block(128),
      layers.Flatten(),
      layers.Dropout(1 - KEEP_PROB_CONV),
      layers.Dense(model_lib.HIDDEN_UNITS, activation="relu", use_bias=False,
                   kernel_initializer=initializer),
      layers.Dropout(1 - KEEP_PROB_HIDDEN),
      layers.Dense(model_lib.NUM_CLASSES, use_bias=False,
                   kernel_initializer=initializer),
  ])


def keras_fit_rates(turns, warmup_steps, max_repeats, precision="float32",
                    pool_batches=20):
  """`model.fit`, timed between batch callbacks, one repeat per turn.

  The callback waits for the parent's turn inside `fit` (the time waiting is
  not counted), and stops `fit` when the parent says stop.

  Args:
    turns: a `timing.Turns`.
    warmup_steps: steps before the first turn.
    max_repeats: the most turns the parent will give (sizes the fit).
    precision: "float32" or "mixed_bfloat16" (Keras's policy of that name).
  """
  import keras  # pylint: disable=g-import-not-at-top

  batch_size, steps = turns.batch_size, turns.steps
  if precision != "float32":
    keras.mixed_precision.set_global_policy(precision)
  model = keras_model()
  model.compile(
      # Keras's RMSprop starts its mean square at zeros, not ones (see
      # optim.py); the cost per step is the same.
      optimizer=keras.optimizers.RMSprop(LEARNING_RATE, rho=DECAY,
                                         epsilon=1e-10),
      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
  images, labels = random_pool(pool_batches * batch_size)
  float_images = images.astype(np.float32) / 255.0
  one_hot = np.eye(model_lib.NUM_CLASSES, dtype=np.float32)[labels]
  data = (tf.data.Dataset.from_tensor_slices((float_images, one_hot))
          .batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE))

  class Clock(keras.callbacks.Callback):
    """After the warm-up and after every `steps` steps: report, wait a turn."""

    def on_train_batch_end(self, batch, logs=None):
      done = batch + 1 - warmup_steps
      if done < 0 or done % steps:
        return
      if done == 0:
        turns.ready()
      else:
        turns.end_turn()
      if not turns.next_turn():
        self.model.stop_training = True

  model.fit(data, epochs=1,
            steps_per_epoch=warmup_steps + steps * (max_repeats + 1),
            callbacks=[Clock()], verbose=0)
  return {"compute_dtype": model.layers[0].compute_dtype,
          "variable_dtype": model.layers[0].variable_dtype}
