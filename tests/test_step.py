"""The traced step (tf_raw/step.py): loss, one update, bookkeeping, predict.

The oracles: numpy's softmax cross-entropy for the loss, and the step written
out by hand from the pieces it is made of (`tf.GradientTape`, `optim.RMSProp`,
`optim.update_moving_average`) on a twin model, traced too (Grappler rewrites
`/ 255` as `* (1 / 255)` in a traced step, so an eager one differs by ulps),
compared bit for bit.
"""

import numpy as np
import tensorflow as tf

from tf_raw import augment as augment_lib
from tf_raw import config as config_lib
from tf_raw import model as model_lib
from tf_raw import optim
from tf_raw import step as step_lib

BATCH = 6


def _config(**overrides):
  settings = dict(dataset="synthetic", model_dir="unused", batch_size=BATCH,
                  init_stddev=0.1, seed=3)
  settings.update(overrides)
  return config_lib.TrainConfig(**settings)


def _batch(num_images=BATCH, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_images, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, num_images).astype(np.int32)
  return images, labels


def _softmax_cross_entropy(logits, labels):
  logits = logits.astype(np.float64)
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  return -log_probs[np.arange(len(labels)), labels]


class LossTest(tf.test.TestCase):

  def test_mean_softmax_cross_entropy_of_the_logits(self):
    net = model_lib.ConvNet(init_stddev=0.1, seed=0)
    images, labels = _batch()
    logits = net(tf.cast(images, tf.float32) / 255.0).numpy()
    expected = _softmax_cross_entropy(logits, labels).mean()
    self.assertAllClose(step_lib.loss(net, images, labels), expected,
                        rtol=1e-5)

  def test_dropout_seed_is_the_run_seed_and_the_step(self):
    self.assertAllEqual(step_lib.dropout_seed(7, tf.constant(12, tf.int64)),
                        [7, 12])


class LearnerTest(tf.test.TestCase):

  def _by_hand(self, config, images, labels, steps, total_steps=1):
    """The step written out: a twin model, the same seed, the same pieces.

    With --lr_schedule=cosine, step i's rate is optim.cosine_rate(rate, i,
    total_steps); with --augment=crop_flip, step i trains on
    augment.crop_flip(images, augment.augment_seed(seed, i)).
    """
    net = model_lib.ConvNet(config.init_stddev, seed=config.seed)
    average = model_lib.ConvNet(config.init_stddev, seed=config.seed)
    rmsprop = optim.RMSProp(net.weights, config.learning_rate, config.decay,
                            config.momentum, config.epsilon)

    @tf.function  # Traced, as the Learner's step is (Grappler rewrites both).
    def one_step(images, labels, index):
      if config.augment == "crop_flip":
        images = augment_lib.crop_flip(
            images, augment_lib.augment_seed(config.seed, index))
      seed = tf.stack([tf.constant(config.seed, tf.int64), index])
      with tf.GradientTape() as tape:
        loss = step_lib.loss(net, images, labels, config.keep_prob_conv,
                             config.keep_prob_hidden, seed)
      rate = None
      if config.lr_schedule == "cosine":
        rate = optim.cosine_rate(config.learning_rate, index, total_steps)
      rmsprop.apply(tape.gradient(loss, net.weights), rate)
      optim.update_moving_average(average.weights, net.weights,
                                  config.ema_decay, index)
      return loss

    losses = [one_step(images, labels, tf.constant(index, tf.int64)).numpy()
              for index in range(steps)]
    return net, average, rmsprop, losses

  def test_train_step_is_the_step_written_out(self):
    # ema_decay 0.05 is below the schedule's 0.1 at step 0, so the average
    # shows which decay the step used.
    config = _config(ema_decay=0.05)
    images, labels = _batch()
    learner = step_lib.Learner(config)
    losses = [learner.train_step(images, labels).numpy() for _ in range(3)]
    net, average, rmsprop, expected_losses = self._by_hand(
        config, images, labels, 3)
    self.assertAllEqual(losses, expected_losses)
    for ours, theirs in zip(learner.model.weights, net.weights):
      self.assertAllEqual(ours, theirs)
    for ours, theirs in zip(learner.average_model.weights, average.weights):
      self.assertAllEqual(ours, theirs)
    for ours, theirs in zip(learner.optimizer.mean_squares,
                            rmsprop.mean_squares):
      self.assertAllEqual(ours, theirs)
    self.assertEqual(int(learner.global_step.numpy()), 3)
    self.assertAllClose(learner.epoch_loss_sum, sum(losses), rtol=1e-6)
    self.assertEqual(int(learner.first_nonfinite_step.numpy()), -1)
    # Dropout was on (0.8, 0.5): the same step without it gives another loss.
    self.assertNotAllClose(losses[0], step_lib.loss(
        model_lib.ConvNet(config.init_stddev, seed=config.seed), images,
        labels))

  def test_one_device_step_has_no_replica_machinery(self):
    # Outside a strategy the traced step is the lesson's: no split of the
    # batch into replica rows and no guard for a replica with no rows (a
    # tf.cond), which only a strategy with several replicas needs.
    learner = step_lib.Learner(_config(augment="crop_flip"))
    graph = learner.train_step.function.get_concrete_function().graph
    op_types = {op.type for op in graph.get_operations()}
    self.assertEmpty(op_types & {"If", "StatelessIf", "Case"})
    self.assertIn("ResourceApplyRMSProp", op_types)

  def test_cosine_rate_runs_over_the_total_steps_one_by_default(self):
    # Three steps each: over total_steps=3 the rates are lr, 3/4 lr, 1/4 lr;
    # a Learner told nothing (total_steps=None, as in tests) spreads the
    # curve over one step, so steps 1 and 2 get rate 0.
    config = _config(lr_schedule="cosine", learning_rate=0.01, ema_decay=0.0)
    images, labels = _batch()
    for total_steps, expected_total in [(None, 1), (3, 3)]:
      learner = step_lib.Learner(config, total_steps=total_steps)
      losses = [learner.train_step(images, labels).numpy() for _ in range(3)]
      net, _, _, expected_losses = self._by_hand(
          config, images, labels, 3, total_steps=expected_total)
      self.assertAllEqual(losses, expected_losses)
      for ours, theirs in zip(learner.model.weights, net.weights):
        self.assertAllEqual(ours, theirs)

  def test_crop_flip_augments_each_step_with_its_own_seed(self):
    config = _config(augment="crop_flip", ema_decay=0.0)
    images, labels = _batch()
    learner = step_lib.Learner(config)
    losses = [learner.train_step(images, labels).numpy() for _ in range(2)]
    net, _, _, expected_losses = self._by_hand(config, images, labels, 2)
    self.assertAllEqual(losses, expected_losses)
    for ours, theirs in zip(learner.model.weights, net.weights):
      self.assertAllEqual(ours, theirs)
    # The crops changed what the step saw: unaugmented, another loss.
    _, _, _, plain_losses = self._by_hand(
        _config(ema_decay=0.0), images, labels, 1)
    self.assertNotAllClose(losses[0], plain_losses[0])

  def test_a_nonfinite_first_step_stays_the_first(self):
    # Step 0 itself NaN: the record keeps 0 through later NaN steps.
    learner = step_lib.Learner(_config(ema_decay=0.0))
    images, labels = _batch()
    for weight in learner.model.weights:
      weight.assign(weight * 1e30)
    for _ in range(3):
      self.assertFalse(np.isfinite(learner.train_step(images, labels).numpy()))
    self.assertEqual(int(learner.first_nonfinite_step.numpy()), 0)

  def test_average_starts_equal_to_the_model_and_zero_decay_has_none(self):
    learner = step_lib.Learner(_config())
    for raw, average in zip(learner.model.weights,
                            learner.average_model.weights):
      self.assertAllEqual(raw, average)
    self.assertIsNone(step_lib.Learner(_config(ema_decay=0.0)).average_model)
    raw_only = step_lib.Learner(_config(ema_decay=0.0))
    self.assertIs(raw_only.eval_model, raw_only.model)

  def test_train_steps_runs_consecutive_batches_the_last_one_partial(self):
    config = _config(keep_prob_conv=1.0, keep_prob_hidden=1.0)
    images, labels = _batch(2 * BATCH + 2)
    together, one_by_one = step_lib.Learner(config), step_lib.Learner(config)
    together.train_steps(images, labels)
    for start in range(0, len(labels), BATCH):
      one_by_one.train_step(images[start:start + BATCH],
                            labels[start:start + BATCH])
    self.assertEqual(int(together.global_step.numpy()), 3)
    for a, b in zip(together.model.weights, one_by_one.model.weights):
      self.assertAllEqual(a, b)

  def test_first_nonfinite_step_is_recorded_once(self):
    learner = step_lib.Learner(_config(ema_decay=0.0))
    images, labels = _batch()
    learner.train_step(images, labels)
    for weight in learner.model.weights:  # float32 overflows: the loss is NaN.
      weight.assign(weight * 1e30)
    self.assertFalse(np.isfinite(learner.train_step(images, labels).numpy()))
    learner.train_step(images, labels)
    self.assertEqual(int(learner.first_nonfinite_step.numpy()), 1)
    self.assertEqual(int(learner.global_step.numpy()), 3)

  def test_predict_is_the_argmax_of_the_evaluation_weights(self):
    learner = step_lib.Learner(_config(), num_classes=7)
    images, _ = _batch(40)
    learner.average_model.w_o.assign(learner.average_model.w_o * -3.0)
    scaled = tf.cast(images, tf.float32) / 255.0
    self.assertAllEqual(learner.predict(images), np.argmax(
        learner.average_model(scaled).numpy(), axis=1))
    self.assertAllEqual(learner.predict_raw(images), np.argmax(
        learner.model(scaled).numpy(), axis=1))
    self.assertNotAllEqual(learner.predict(images), learner.predict_raw(images))
    self.assertEqual(learner.model.w_o.shape, (625, 7))


class CheckUint8Test(tf.test.TestCase):

  def test_float_images_are_refused_in_one_sentence(self):
    learner = step_lib.Learner(_config())
    images, labels = _batch()
    with self.assertRaises(TypeError) as caught:
      learner.train_step(images.astype(np.float32) / 255.0, labels)
    self.assertEqual(
        str(caught.exception),
        "images must be uint8 pixels in 0..255, not float32 (the traced step "
        "would cast floats in [0, 1] to 0s and 1s); pass the uint8 images, "
        "e.g. np.round(images * 255).astype(np.uint8).")
    self.assertEqual(int(learner.global_step.numpy()), 0)  # Nothing ran.

  def test_arrays_without_a_dtype_are_judged_by_numpys(self):
    # A nested list has no dtype: numpy's reading of it decides.
    step_lib.check_uint8([[np.uint8(0), np.uint8(255)]])  # uint8: accepted.
    with self.assertRaisesRegex(TypeError, r"^images must be uint8 pixels "
                                r"in 0\.\.255, not float64 "):
      step_lib.check_uint8([[0.0, 1.0]])
