"""The 2018 notebook's TF1 graph, runnable today through `tf.compat.v1`.

This is the original, kept as a living oracle: the same placeholders, the same
`tf.nn` calls in the same order, `RMSPropOptimizer(0.001, 0.9).minimize(cost)`,
a `Session` and `feed_dict`. The one change is the notebook's 5-D typo in the
first weight ([3, 3, 3, 32, 32] -> [3, 3, 3, 32]), which would not even build.
Tests and `python -m tf_raw.tf1.compare` run it beside the TF2 code
(`tf_raw/model.py`, `tf_raw/optim.py`, `tf_raw/step.py`) to show that the
two compute the same thing; `python -m tf_raw.train --api=v1` trains with it.

Public:

    TF1Graph(initial_weights=None, learning_rate=0.001, decay=0.9, ...)
      .train_step(images, labels, keep_prob_conv, keep_prob_hidden) -> loss
      .logits(images) -> float32 [B, 10]
      .predict(images, batch_size=None) -> int64 [B] class ids
      .weights() -> [w, w2, w3, w4, w_o] as numpy arrays
      .slots() -> {"rms": [...], "momentum": [...]} (TF1's slot names)
      .set_weights(values)
      .close() (or use it as a context manager)
    to_float_images(images), to_one_hot(labels)

The notebook's graph, as written (names kept: X, Y, p_keep_conv,
p_keep_hidden, py_x, cost, train_op, predict_op):

    X = tf.placeholder("float", [None, 32, 32, 3])
    Y = tf.placeholder("float", [None, 10])
    w = init_weights([3, 3, 3, 32])            # was [3, 3, 3, 32, 32]
    w2 = init_weights([3, 3, 32, 64])
    w3 = init_weights([3, 3, 64, 128])
    w4 = init_weights([128 * 4 * 4, 625])
    w_o = init_weights([625, 10])
    p_keep_conv = tf.placeholder("float")
    p_keep_hidden = tf.placeholder("float")
    py_x = model(X, w, w2, w3, w4, w_o, p_keep_conv, p_keep_hidden)
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
        logits=py_x, labels=Y))
    train_op = tf.train.RMSPropOptimizer(0.001, 0.9).minimize(cost)
    predict_op = tf.argmax(py_x, 1)

Dropout here is TF1's stateful `tf.nn.dropout(x, keep_prob)`: each run of the
graph draws fresh masks from a per-op random state (seeded by the graph seed),
so the masks depend on how many times the graph has run, not on a step number
you can hand it. The TF2 code uses stateless dropout keyed by (seed, step)
instead, so that a resumed run redraws exactly the masks it would have drawn;
the two streams therefore differ, while the keep fraction and the 1/keep_prob
scaling are the same (see tests/test_tf1_parity.py).
"""

import numpy as np
import tensorflow as tf

from tf_raw import model as model_lib

v1 = tf.compat.v1

NUM_CLASSES = model_lib.NUM_CLASSES
# The notebook's shapes, in its order (its w, w2, w3, w4, w_o); the same as
# model_lib.WEIGHT_SHAPES, which names them w_c1, w_c2, w_c3, w_fc, w_o.
WEIGHT_SHAPES = tuple(model_lib.WEIGHT_SHAPES.values())


def to_float_images(images):
  """What the notebook fed to X: float32 [B, 32, 32, 3] in [0, 1].

  Args:
    images: uint8 [B, 32, 32, 3] (scaled to [0, 1], as the notebook did with
      numpy before training) or floats already in [0, 1] (passed through).
  """
  images = np.asarray(images)
  if images.dtype == np.uint8:
    # The TF2 train step writes tf.cast(images, tf.float32) / 255.0, but
    # Grappler's constant folding rewrites a division by a constant as a
    # multiplication by its float32 reciprocal, which differs from a true
    # division by one ulp for about half of the 256 pixel values. Scale the
    # same way, so that both graphs see bit-identical inputs.
    return images.astype(np.float32) * np.float32(1.0 / 255.0)
  return images.astype(np.float32, copy=False)


def to_one_hot(labels):
  """What the notebook fed to Y: float32 [B, 10] one-hot rows.

  Args:
    labels: int [B] class ids, or one-hot rows [B, 10] (passed through).
  """
  labels = np.asarray(labels)
  if labels.ndim == 2:
    return labels.astype(np.float32, copy=False)
  return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def init_weights(shape, stddev=0.01):
  """The notebook's initialiser: a variable from a normal of stddev 0.01."""
  return v1.Variable(v1.random_normal(shape, stddev=stddev))


def model(X, w, w2, w3, w4, w_o, p_keep_conv, p_keep_hidden):  # pylint: disable=invalid-name
  """The notebook's network, line for line (shapes added).

  Args:
    X: float32 [B, 32, 32, 3] placeholder, pixels in [0, 1].
    w, w2, w3: conv kernels [3, 3, in, out]; w4: [2048, 625]; w_o: [625, 10].
    p_keep_conv, p_keep_hidden: float32 scalar placeholders, dropout KEEP
      probabilities (TF2's tf.nn.dropout takes the drop rate instead).

  Returns:
    (py_x, layers): float32 [B, 10] logits, and a dict naming each dropout's
    input and output tensors ("conv1", ..., "hidden" -> (before, after)), so
    tests can look at the masks.
  """
  layers = {}

  def dropout(x, keep_prob, name):
    # tf.compat.v1.nn.dropout(x, keep_prob): keeps each value with
    # probability keep_prob and scales the kept ones by 1 / keep_prob.
    out = v1.nn.dropout(x, keep_prob)
    layers[name] = (x, out)
    return out

  l1a = tf.nn.relu(v1.nn.conv2d(X, w, strides=[1, 1, 1, 1],
                                padding="SAME"))            # (B, 32, 32, 32)
  l1 = v1.nn.max_pool(l1a, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                      padding="SAME")                       # (B, 16, 16, 32)
  l1 = dropout(l1, p_keep_conv, "conv1")

  l2a = tf.nn.relu(v1.nn.conv2d(l1, w2, strides=[1, 1, 1, 1],
                                padding="SAME"))            # (B, 16, 16, 64)
  l2 = v1.nn.max_pool(l2a, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                      padding="SAME")                       # (B, 8, 8, 64)
  l2 = dropout(l2, p_keep_conv, "conv2")

  l3a = tf.nn.relu(v1.nn.conv2d(l2, w3, strides=[1, 1, 1, 1],
                                padding="SAME"))            # (B, 8, 8, 128)
  l3 = v1.nn.max_pool(l3a, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                      padding="SAME")                       # (B, 4, 4, 128)
  l3 = dropout(l3, p_keep_conv, "conv3")
  l3 = tf.reshape(l3, [-1, w4.get_shape().as_list()[0]])    # (B, 2048)
  l3 = dropout(l3, p_keep_conv, "flat")

  l4 = tf.nn.relu(tf.matmul(l3, w4))                        # (B, 625)
  l4 = dropout(l4, p_keep_hidden, "hidden")

  py_x = tf.matmul(l4, w_o)                                 # (B, 10)
  return py_x, layers


class TF1Graph:
  """The notebook's graph in its own `tf.Graph`, run by its own `Session`.

  Attributes (the notebook's tensors, for learners and tests):
    graph, session: the `tf.Graph` and the `tf.compat.v1.Session` running it.
    X, Y, p_keep_conv, p_keep_hidden: the four placeholders.
    py_x: logits; cost: mean cross-entropy; train_op; predict_op: argmax.
    variables: [w, w2, w3, w4, w_o]; optimizer: the RMSPropOptimizer.
    layers: dropout name -> (input tensor, output tensor).
  """

  def __init__(self, initial_weights=None, learning_rate=0.001, decay=0.9,
               momentum=0.0, epsilon=1e-10, init_stddev=0.01, seed=None,
               session_config=None):
    """Builds the graph, opens a session and initialises every variable.

    Args:
      initial_weights: None (draw them as the notebook did, with
        random_normal(stddev=init_stddev)) or five float32 arrays in the
        notebook's order, e.g. `[v.numpy() for v in ConvNet(seed=0).weights]`
        to start exactly where the TF2 model starts.
      learning_rate, decay, momentum, epsilon: RMSPropOptimizer's arguments;
        the notebook passed (0.001, 0.9) and left momentum=0, epsilon=1e-10.
      init_stddev: stddev of the notebook's initialiser (0.01).
      seed: graph-level seed (tf.set_random_seed): fixes the random initial
        weights and the dropout masks of a run of this graph. None: random.
      session_config: optional `tf.compat.v1.ConfigProto` (threads etc.).
    """
    self.graph = tf.Graph()
    # tf.compat.v1 warns that keep_prob and an initializer's dtype argument
    # are deprecated: true, and the point of this module; keep the log clean.
    logger = tf.get_logger()
    log_level = logger.level
    logger.setLevel("ERROR")
    try:
      self._build(learning_rate, decay, momentum, epsilon, init_stddev, seed)
    finally:
      logger.setLevel(log_level)
    self.graph.finalize()  # Nothing may add ops from here on.

    self.session = v1.Session(graph=self.graph, config=session_config)
    # Runs every initialiser: weights from random_normal, RMSProp's "rms"
    # slots from ONES, its "momentum" slots from zeros.
    self.session.run(self._init_op)
    if initial_weights is not None:
      self.set_weights(initial_weights)

  def _build(self, learning_rate, decay, momentum, epsilon, init_stddev,
             seed):
    """Adds the notebook's graph (and two helpers) to self.graph."""
    with self.graph.as_default():
      if seed is not None:
        v1.set_random_seed(seed)
      # The notebook's placeholders; "float" is float32.
      self.X = v1.placeholder("float", [None, 32, 32, 3])  # pylint: disable=invalid-name
      self.Y = v1.placeholder("float", [None, NUM_CLASSES])  # pylint: disable=invalid-name
      self.variables = [init_weights(shape, init_stddev)
                        for shape in WEIGHT_SHAPES]
      self.p_keep_conv = v1.placeholder("float")
      self.p_keep_hidden = v1.placeholder("float")
      self.py_x, self.layers = model(self.X, *self.variables,
                                     self.p_keep_conv, self.p_keep_hidden)
      self.cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
          logits=self.py_x, labels=self.Y))
      self.optimizer = v1.train.RMSPropOptimizer(
          learning_rate, decay, momentum=momentum, epsilon=epsilon)
      self.train_op = self.optimizer.minimize(self.cost)
      self.predict_op = tf.argmax(self.py_x, 1)

      # Not in the notebook: the TF1 way to overwrite a variable from numpy
      # is an assign op fed through a placeholder (no constants in the graph).
      self._weight_feeds = [v1.placeholder(tf.float32, shape)
                            for shape in WEIGHT_SHAPES]
      self._assign_weights = tf.group(*[
          var.assign(feed) for var, feed in zip(self.variables,
                                                self._weight_feeds)])
      self._slots = {name: [self.optimizer.get_slot(var, name)
                            for var in self.variables]
                     for name in ("rms", "momentum")}
      self._init_op = v1.global_variables_initializer()

  # -------------------------------------------------------------- running --

  def train_step(self, images, labels, keep_prob_conv=0.8,
                 keep_prob_hidden=0.5):
    """One `sess.run(train_op, feed_dict=...)`, as in the notebook's loop.

    Args:
      images: uint8 [B, 32, 32, 3] or float [B, 32, 32, 3] in [0, 1].
      labels: int [B] class ids or float [B, 10] one-hot rows.
      keep_prob_conv, keep_prob_hidden: fed to the keep-probability
        placeholders (the notebook fed 0.8 and 0.5; 1.0 turns dropout off).

    Returns:
      The batch's mean loss (Python float), computed in the same run as the
      update, so from the weights before it (as the TF2 train step does).
    """
    _, loss = self.session.run([self.train_op, self.cost], feed_dict={
        self.X: to_float_images(images), self.Y: to_one_hot(labels),
        self.p_keep_conv: keep_prob_conv,
        self.p_keep_hidden: keep_prob_hidden})
    return float(loss)

  def logits(self, images):
    """float32 [B, 10] logits, dropout off (keep probabilities fed 1.0)."""
    return self.session.run(self.py_x, self._eval_feed(images))

  def predict(self, images, batch_size=None):
    """Class ids for `images` (uint8 or float [B, 32, 32, 3]), dropout off.

    Args:
      images: the images.
      batch_size: None runs them all in one batch, as the notebook did with
        its 10,000 test images (conv1's output alone is then 1.3 GB); a
        number splits them (same results, bounded memory).

    Returns:
      int64 [B] class ids (`tf.argmax` returns int64).
    """
    if batch_size is None:
      return self.session.run(self.predict_op, self._eval_feed(images))
    return np.concatenate([
        self.session.run(self.predict_op,
                         self._eval_feed(images[start:start + batch_size]))
        for start in range(0, len(images), batch_size)])

  def _eval_feed(self, images):
    return {self.X: to_float_images(images), self.p_keep_conv: 1.0,
            self.p_keep_hidden: 1.0}

  # ------------------------------------------------------------ variables --

  def weights(self):
    """The five weights as numpy arrays, in the notebook's order."""
    return self.session.run(self.variables)

  def slots(self):
    """RMSProp's state: {"rms": 5 arrays, "momentum": 5 arrays}.

    "rms" is the moving mean square (the TF2 code's `mean_squares`), started
    at ones; "momentum" is the moment (`moments`), started at zeros.
    """
    return self.session.run(self._slots)

  def set_weights(self, values):
    """Overwrites the five weights (slots untouched), notebook order."""
    assert len(values) == len(self.variables), len(values)
    self.session.run(self._assign_weights, dict(zip(
        self._weight_feeds, [np.asarray(v, np.float32) for v in values])))

  # ------------------------------------------------------------- lifetime --

  def close(self):
    """Closes the session (frees its memory)."""
    self.session.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()
