"""RMSProp against TF1's own RMSPropOptimizer, and why Keras's RMSprop differs."""

import numpy as np
import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import model as model_lib
from tf_raw import optim
from tf_raw.tf1 import parity

STEPS = 120


def _gradient_sequence(shapes, steps, seed=0):
  """Per step, one random gradient per variable (some large, some tiny)."""
  rng = np.random.default_rng(seed)
  return [[(rng.standard_normal(s) * 10.0 ** rng.integers(-4, 1))
           .astype(np.float32) for s in shapes] for _ in range(steps)]


def _tf1_rmsprop(initial, gradients, momentum):
  """Applies the gradients with tf.compat.v1.train.RMSPropOptimizer (graph)."""
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.Variable(v, use_resource=True) for v in initial]
    grads = [tf.compat.v1.placeholder(tf.float32, v.shape) for v in initial]
    train_op = tf.compat.v1.train.RMSPropOptimizer(
        0.001, 0.9, momentum=momentum).apply_gradients(zip(grads, variables))
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for step_grads in gradients:
        sess.run(train_op, dict(zip(grads, step_grads)))
      return sess.run(variables)


class RMSPropTest(tf.test.TestCase):

  def _check_against_tf1(self, momentum):
    net = model_lib.ConvNet(seed=0)
    initial = [v.numpy() for v in net.weights]
    gradients = _gradient_sequence([v.shape for v in initial], STEPS)
    expected = _tf1_rmsprop(initial, gradients, momentum)
    optimizer = optim.RMSProp(net.weights, 0.001, 0.9, momentum, 1e-10)
    apply = tf.function(optimizer.apply)
    for step_grads in gradients:
      apply([tf.constant(g) for g in step_grads])
    for ours, theirs in zip(net.weights, expected):
      # The same kernel runs in both, so the results are bit-identical; the
      # brief's bound is 1e-6.
      self.assertLessEqual(np.max(np.abs(ours.numpy() - theirs)), 1e-6)
      self.assertAllEqual(ours, theirs)
    self.assertNotAllClose(net.weights[0], initial[0])

  def test_matches_tf1_over_many_steps(self):
    self._check_against_tf1(momentum=0.0)

  def test_matches_tf1_with_momentum(self):
    self._check_against_tf1(momentum=0.9)

  def test_first_step_matches_hand_computation(self):
    var = tf.Variable([1.0, -2.0, 3.0])
    grad = np.array([0.5, -0.1, 2.0], np.float32)
    optim.RMSProp([var]).apply([tf.constant(grad)])
    mean_square = 0.9 * 1.0 + 0.1 * grad**2           # The slot starts at ONE.
    expected = np.array([1.0, -2.0, 3.0]) - 0.001 * grad / np.sqrt(
        mean_square + 1e-10)
    self.assertAllClose(var, expected, rtol=1e-6)

  def test_defaults_are_tf1s_over_two_steps_by_hand(self):
    # Two steps, so a default momentum other than 0 would show (the first
    # step's momentum slot starts at zero either way).
    var = tf.Variable([1.0, -2.0, 3.0])
    optimizer = optim.RMSProp([var])
    self.assertEqual((optimizer.learning_rate, optimizer.decay,
                      optimizer.momentum, optimizer.epsilon),
                     (0.001, 0.9, 0.0, 1e-10))
    expected = np.array([1.0, -2.0, 3.0])
    mean_square, moment = np.ones(3), np.zeros(3)
    for grad in ([0.5, -0.1, 2.0], [0.3, 0.2, -1.0]):
      grad = np.array(grad, np.float32)
      optimizer.apply([tf.constant(grad)])
      mean_square = 0.9 * mean_square + 0.1 * grad**2
      moment = 0.0 * moment + 0.001 * grad / np.sqrt(mean_square + 1e-10)
      expected = expected - moment
    self.assertAllClose(var, expected, rtol=1e-6)

  def test_slots_are_named_after_their_variables(self):
    net = model_lib.ConvNet(seed=0)
    optimizer = optim.RMSProp(net.weights)
    self.assertEqual([v.name for v in optimizer.mean_squares[:2]],
                     ["rmsprop/w_c1_ms:0", "rmsprop/w_c2_ms:0"])
    self.assertEqual([v.name for v in optimizer.moments[-1:]],
                     ["rmsprop/w_o_mom:0"])

  def test_slots_start_at_ones_and_zeros(self):
    net = model_lib.ConvNet(seed=0)
    optimizer = optim.RMSProp(net.weights)
    for ms, mom in zip(optimizer.mean_squares, optimizer.moments):
      self.assertAllEqual(ms, tf.ones_like(ms))
      self.assertAllEqual(mom, tf.zeros_like(mom))
    # Not trainable: a tape never watches them, and trainable_variables
    # lists the weights alone.
    self.assertFalse([slot.name for slot in
                      optimizer.mean_squares + optimizer.moments
                      if slot.trainable])

  def test_keras_rmsprop_first_step_at_initialisation_is_3000x_tf1s(self):
    # The real first step of the network at its initial weights, measured
    # with the real keras.optimizers.RMSprop: gradients are tiny (stddev-0.01
    # weights), so 0.1 g^2 << Keras's epsilon 1e-7 and the epsilon, not the
    # zero start alone, sets Keras's step: lr * g / sqrt(1e-7), against TF1's
    # lr * g / sqrt(0.9): sqrt(0.9 / 1e-7) = 3,000 times larger.
    dataset = data.synthetic(num_train=128, num_test=10, seed=0)
    steps = parity.keras_rmsprop_first_step(
        config_lib.TrainConfig(), dataset.train_images, dataset.train_labels)
    self.assertEqual(list(steps), list(model_lib.WEIGHT_SHAPES))
    for name, step in steps.items():
      self.assertLess(step["gradient"], 1e-4, name)  # Not ~1e-2.
      self.assertAllClose(step["tf1"], 0.001 * step["gradient"] / np.sqrt(0.9),
                          rtol=0.01, msg=name)
      self.assertAllClose(step["keras"] / step["tf1"], np.sqrt(0.9 / 1e-7),
                          rtol=0.01, msg=name)

  def test_keras_rmsprop_is_a_different_optimizer(self):
    # Keras 3 starts the mean square at ZEROS (epsilon 1e-7, inside the sqrt):
    # its first step is lr * g / sqrt(0.1 g^2 + 1e-7): for gradients as large
    # as these (|g| >> 1e-3) about 3.16 * lr * sign(g), where TF1's is
    # lr * g / sqrt(0.9 + 0.1 g^2) ~ lr * g. (At this network's initial
    # weights |g| ~ 1e-8..1e-5: see the test above.)
    grad = np.array([0.01, -0.02, 0.03], np.float32)
    ours, theirs = tf.Variable(tf.zeros(3)), tf.Variable(tf.zeros(3))
    optim.RMSProp([ours], 0.001, 0.9).apply([tf.constant(grad)])
    keras_rmsprop = tf.keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9)
    keras_rmsprop.apply_gradients([(tf.constant(grad), theirs)])

    keras_expected = -0.001 * grad / np.sqrt(0.1 * grad**2 + 1e-7)
    tf1_expected = -0.001 * grad / np.sqrt(0.9 + 0.1 * grad**2 + 1e-10)
    self.assertAllClose(theirs, keras_expected, rtol=1e-5)
    self.assertAllClose(ours, tf1_expected, rtol=1e-5)
    # Keras's first step is ~100x larger here: the two do not match.
    self.assertAllGreater(np.abs(theirs.numpy()) / np.abs(ours.numpy()), 50.0)


class MovingAverageTest(tf.test.TestCase):

  def test_matches_hand_computation_with_tf1_num_updates_schedule(self):
    variable = tf.Variable([0.0, 0.0])
    average = tf.Variable([1.0, -1.0])
    expected = np.array([1.0, -1.0])
    for step in range(5):
      value = np.array([step, 2.0 * step], np.float32)
      variable.assign(value)
      optim.update_moving_average([average], [variable], 0.999, step)
      decay = min(0.999, (1.0 + step) / (10.0 + step))
      expected = decay * expected + (1 - decay) * value
    self.assertAllClose(average, expected, rtol=1e-6)

  def test_matches_tf1_exponential_moving_average(self):
    # The oracle: TF1's own tf.train.ExponentialMovingAverage with num_updates.
    values = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
      var = tf.compat.v1.Variable(values[0], use_resource=True)
      step = tf.compat.v1.placeholder(tf.int64, [])
      new_value = tf.compat.v1.placeholder(tf.float32, [4])
      assign = var.assign(new_value)
      ema = tf.compat.v1.train.ExponentialMovingAverage(0.9, num_updates=step)
      update = ema.apply([var])
      with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for index, value in enumerate(values):
          sess.run(assign, {new_value: value})
          sess.run(update, {step: index})
        expected = sess.run(ema.average(var))
    ours_var, ours_avg = tf.Variable(values[0]), tf.Variable(values[0])
    for index, value in enumerate(values):
      ours_var.assign(value)
      optim.update_moving_average([ours_avg], [ours_var], 0.9, index)
    self.assertAllClose(ours_avg, expected, rtol=1e-6, atol=1e-7)


class MovingAverageScheduleTest(tf.test.TestCase):
  """The decay cap min(decay, (1 + step) / (10 + step)) must bind.

  With decay 0.9 the schedule (1 + step) / (10 + step) is below 0.9 until step
  80, and decay 0.9 is the smaller from then on, so 120 updates cover both regimes: a moving
  average that ignored `decay` (schedule only) or the schedule (decay only)
  ends elsewhere.
  """

  DECAY = 0.9
  STEPS = 120

  def _values(self):
    return np.random.default_rng(1).standard_normal(
        (self.STEPS, 6)).astype(np.float32)

  def _ours(self, values):
    variable, average = tf.Variable(values[0]), tf.Variable(values[0] + 1.0)
    for step, value in enumerate(values):
      variable.assign(value)
      optim.update_moving_average([average], [variable], self.DECAY,
                                  tf.constant(step, tf.int64))
    return average.numpy()

  def test_cap_binds_from_step_80_against_hand_computation(self):
    values = self._values()
    self.assertLess((1 + 79) / (10 + 79), self.DECAY)
    self.assertEqual((1 + 80) / (10 + 80), self.DECAY)
    self.assertGreater((1 + 81) / (10 + 81), self.DECAY)
    expected = values[0].astype(np.float64) + 1.0
    schedule_only = expected.copy()
    for step, value in enumerate(values):
      decay = min(self.DECAY, (1.0 + step) / (10.0 + step))
      expected = decay * expected + (1 - decay) * value
      schedule = (1.0 + step) / (10.0 + step)
      schedule_only = schedule * schedule_only + (1 - schedule) * value
    ours = self._ours(values)
    self.assertAllClose(ours, expected, rtol=1e-5, atol=1e-6)
    # The two readings differ by far more than the tolerance.
    self.assertGreater(np.max(np.abs(expected - schedule_only)), 1e-2)

  def test_fused_update_is_bit_identical_to_the_three_pass_form(self):
    # docs/history.md: one ResourceApplyGradientDescent does the same float32
    # operations as avg -= (1 - d) * (avg - var). Exact equality, step by step.
    values = self._values()
    average = values[0] + 1.0
    ours_var, ours_avg = tf.Variable(values[0]), tf.Variable(average)
    for step, value in enumerate(values):
      ours_var.assign(value)
      optim.update_moving_average([ours_avg], [ours_var], self.DECAY,
                                  tf.constant(step, tf.int64))
      step_f = np.float32(step)
      decay = np.minimum(np.float32(self.DECAY),
                         (np.float32(1) + step_f) / (np.float32(10) + step_f))
      average = average - (np.float32(1) - decay) * (average - value)
      self.assertEqual(average.dtype, np.float32)
      self.assertAllEqual(ours_avg, average)

  def test_bit_identical_to_tf1_exponential_moving_average_past_the_cap(self):
    values = self._values()
    graph = tf.Graph()
    with graph.as_default():
      var = tf.compat.v1.Variable(values[0], use_resource=True)
      step = tf.compat.v1.placeholder(tf.int64, [])
      new_value = tf.compat.v1.placeholder(tf.float32, [6])
      assign = var.assign(new_value)
      ema = tf.compat.v1.train.ExponentialMovingAverage(self.DECAY,
                                                        num_updates=step)
      update = ema.apply([var])
      with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for index, value in enumerate(values):
          sess.run(assign, {new_value: value})
          sess.run(update, {step: index})
        expected = sess.run(ema.average(var))
    ours_var, ours_avg = tf.Variable(values[0]), tf.Variable(values[0])
    for index, value in enumerate(values):
      ours_var.assign(value)
      optim.update_moving_average([ours_avg], [ours_var], self.DECAY,
                                  tf.constant(index, tf.int64))
    self.assertAllEqual(ours_avg, expected)
