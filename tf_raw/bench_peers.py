"""The benchmark's TensorFlow peers: the 2018 TF1 graph and Keras `model.fit`.

Both build the notebook's network (three conv3x3-ReLU-maxpool-dropout blocks,
dropout on the 2048 flattened features, a 625-unit ReLU layer with dropout,
10 logits; no biases; weights from normal(stddev=0.01)) and train it with
RMSProp(0.001, decay 0.9) on batches of 128, each in its own idiom:

* `TF1GraphPeer`: placeholders, `Session.run(train_op, feed_dict=...)` on
  float32 images and one-hot labels prepared up front, as the notebook did.
  Until `tf_raw/tf1_graph.py` (the full TF1 original, kept as an oracle)
  lands, this is a self-contained copy of that graph with the same interface
  (`train_step(images, labels, keep_prob_conv, keep_prob_hidden)`), so
  swapping it for `tf1_graph.TF1Graph` is a one-line change in
  `bench_worker.py`.
* `keras_fit_rates`: a `keras.Sequential` trained by `model.fit` from a
  `tf.data` pipeline (batch, repeat, prefetch), timed by a callback.

Every function takes plain numbers and returns images/sec per timed repeat
(`time_repeats`);
`bench_worker.py` chooses the settings and the process environment.
"""

import time

import numpy as np
import tensorflow as tf

from tf_raw import model as model_lib

v1 = tf.compat.v1

KEEP_PROB_CONV = 0.8
KEEP_PROB_HIDDEN = 0.5
LEARNING_RATE = 0.001
DECAY = 0.9
INIT_STDDEV = 0.01


def time_repeats(run_steps, batch_size, warmup_steps, steps, repeats):
  """Times `run_steps(steps)` `repeats` times after one untimed warm-up.

  Args:
    run_steps: callable(num_steps) that trains num_steps steps and returns
      only when they are done.
    batch_size: images per step.
    warmup_steps: steps run first and not timed.
    steps: steps per timed repeat.
    repeats: how many timed repeats.

  Returns:
    {"repeats": images/sec per repeat (wall clock), "cpu_repeats": images
    per CPU-second of this process per repeat (all its threads; steadier
    than wall time on a busy machine)}.
  """
  run_steps(warmup_steps)
  rates, cpu_rates = [], []
  for _ in range(repeats):
    start, cpu_start = time.perf_counter(), time.process_time()
    run_steps(steps)
    rates.append(steps * batch_size / (time.perf_counter() - start))
    cpu_rates.append(steps * batch_size / (time.process_time() - cpu_start))
  return {"repeats": rates, "cpu_repeats": cpu_rates}


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


class TF1GraphPeer:
  """The notebook's TF1 graph: placeholders, Session and feed_dict."""

  def __init__(self, seed=0):
    self.graph = tf.Graph()
    with self.graph.as_default():
      v1.set_random_seed(seed)
      # The notebook's placeholders: float images in [0, 1], one-hot labels.
      self.X = v1.placeholder(tf.float32, [None, *model_lib.IMAGE_SHAPE])
      self.Y = v1.placeholder(tf.float32, [None, model_lib.NUM_CLASSES])
      self.p_keep_conv = v1.placeholder(tf.float32)
      self.p_keep_hidden = v1.placeholder(tf.float32)
      w, w2, w3, w4, w_o = [
          tf.Variable(v1.random_normal(shape, stddev=INIT_STDDEV))
          for shape in model_lib.WEIGHT_SHAPES.values()]

      def block(x, kernel):
        x = tf.nn.relu(v1.nn.conv2d(x, kernel, [1, 1, 1, 1], "SAME"))
        x = v1.nn.max_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        return v1.nn.dropout(x, keep_prob=self.p_keep_conv)

      l1 = block(self.X, w)
      l2 = block(l1, w2)
      l3 = block(l2, w3)
      l3 = v1.nn.dropout(tf.reshape(l3, [-1, w4.shape[0]]),
                         keep_prob=self.p_keep_conv)
      l4 = v1.nn.dropout(tf.nn.relu(tf.matmul(l3, w4)),
                         keep_prob=self.p_keep_hidden)
      py_x = tf.matmul(l4, w_o)
      cost = tf.reduce_mean(v1.nn.softmax_cross_entropy_with_logits_v2(
          logits=py_x, labels=self.Y))
      self.train_op = v1.train.RMSPropOptimizer(
          LEARNING_RATE, DECAY).minimize(cost)
      self.session = v1.Session(graph=self.graph)
      self.session.run(v1.global_variables_initializer())

  def train_step(self, images, labels, keep_prob_conv, keep_prob_hidden):
    """One `sess.run(train_op)`: float32 [B, 32, 32, 3], one-hot [B, 10]."""
    self.session.run(self.train_op, feed_dict={
        self.X: images, self.Y: labels,
        self.p_keep_conv: keep_prob_conv, self.p_keep_hidden: keep_prob_hidden})

  def close(self):
    self.session.close()


def tf1_graph_rates(batch_size, warmup_steps, steps, repeats, pool_batches=20):
  """`time_repeats` of the TF1 graph, fed like the notebook."""
  images, labels = random_pool(pool_batches * batch_size)
  # The notebook scaled and one-hot encoded the whole set before training.
  float_images = images.astype(np.float32) / 255.0
  one_hot = np.eye(model_lib.NUM_CLASSES, dtype=np.float32)[labels]
  peer = TF1GraphPeer()
  batch = [0]

  def run_steps(num_steps):
    for _ in range(num_steps):
      start = batch[0] % pool_batches * batch_size
      peer.train_step(float_images[start:start + batch_size],
                      one_hot[start:start + batch_size],
                      KEEP_PROB_CONV, KEEP_PROB_HIDDEN)
      batch[0] += 1

  try:
    return time_repeats(run_steps, batch_size, warmup_steps, steps, repeats)
  finally:
    peer.close()


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


def keras_fit_rates(batch_size, warmup_steps, steps, repeats, pool_batches=20):
  """Like `time_repeats`, for `model.fit`, timed between batch callbacks."""
  import keras  # pylint: disable=g-import-not-at-top

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
    """Notes the time after the warm-up and after every `steps` steps."""

    def __init__(self):
      super().__init__()
      self.marks = []

    def on_train_batch_end(self, batch, logs=None):
      done = batch + 1 - warmup_steps
      if done >= 0 and done % steps == 0:
        self.marks.append((time.perf_counter(), time.process_time()))

  clock = Clock()
  model.fit(data, epochs=1, steps_per_epoch=warmup_steps + steps * repeats,
            callbacks=[clock], verbose=0)
  intervals = list(zip(clock.marks, clock.marks[1:]))
  return {"repeats": [steps * batch_size / (end[0] - start[0])
                      for start, end in intervals],
          "cpu_repeats": [steps * batch_size / (end[1] - start[1])
                          for start, end in intervals]}
