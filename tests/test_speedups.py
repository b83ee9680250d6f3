"""Each training speed-up computes what the plain version computed.

* ConvNet against the textbook ops written out eagerly
  (`tf.nn.experimental.stateless_dropout`, ReLU then max-pool): same logits,
  same gradients.
* `Trainer.train_steps` (K steps in one call, a loop in the graph) against K
  calls of `Trainer.train_step`: same weights, slots and losses.
"""

import os

import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import model as model_lib
from tf_raw import loop


def _textbook_logits(weights, images, keep_prob_conv, keep_prob_hidden, seed):
  """The notebook's forward pass with TF's own dropout op, in eager mode."""
  w_c1, w_c2, w_c3, w_fc, w_o = weights
  streams = iter(range(5))  # model._DROPOUT_STREAMS, in order.

  def dropout(x, keep_prob):
    op_seed = tf.random.experimental.stateless_fold_in(seed, next(streams))
    return tf.nn.experimental.stateless_dropout(x, rate=1.0 - keep_prob,
                                                seed=op_seed)

  def block(x, kernel):
    x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"))
    return dropout(tf.nn.max_pool2d(x, 2, 2, "SAME"), keep_prob_conv)

  x = block(block(block(images, w_c1), w_c2), w_c3)
  x = dropout(tf.reshape(x, [-1, 2048]), keep_prob_conv)
  x = dropout(tf.nn.relu(tf.matmul(x, w_fc)), keep_prob_hidden)
  return tf.matmul(x, w_o)


class ConvNetSpeedupsTest(tf.test.TestCase):

  def test_logits_and_gradients_match_the_textbook_ops(self):
    net = model_lib.ConvNet(init_stddev=0.1, seed=0)
    images = tf.random.stateless_uniform([6, 32, 32, 3], seed=[3, 4])
    seed = tf.constant([0, 17], tf.int64)
    with tf.GradientTape(persistent=True) as tape:
      ours = net(images, 0.8, 0.5, seed)
      textbook = _textbook_logits(net.weights, images, 0.8, 0.5, seed)
      ours_loss, textbook_loss = (tf.reduce_sum(tf.sin(logits))
                                  for logits in (ours, textbook))
    self.assertAllClose(ours, textbook, rtol=1e-6, atol=1e-7)
    for a, b in zip(tape.gradient(ours_loss, net.weights),
                    tape.gradient(textbook_loss, net.weights)):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-7)


def _trainer(model_dir, dataset, **overrides):
  settings = dict(dataset="synthetic", model_dir=model_dir, epochs=1,
                  batch_size=16, print_predictions=False)
  settings.update(overrides)
  return loop.Trainer(config_lib.TrainConfig(**settings), dataset,
                          out=lambda line: None)


class TrainStepsTest(tf.test.TestCase):

  def test_one_call_of_k_steps_equals_k_single_steps(self):
    dataset = data.synthetic(num_train=70, num_test=10, seed=2)
    images, labels = dataset.train_images, dataset.train_labels
    one_by_one = _trainer(os.path.join(self.get_temp_dir(), "a"), dataset)
    looped = _trainer(os.path.join(self.get_temp_dir(), "b"), dataset)
    # 70 images in batches of 16: four full steps and one of 6.
    losses = [one_by_one.learner.train_step(images[start:start + 16],
                                    labels[start:start + 16]).numpy()
              for start in range(0, 70, 16)]
    looped.learner.train_steps(images, labels)
    self.assertEqual(int(looped.learner.global_step.numpy()), 5)
    # The same dropout masks (keyed by the step) and the same updates.
    self.assertAllClose(looped.learner.epoch_loss_sum.numpy(), sum(losses),
                        rtol=1e-6)
    for a, b in zip(one_by_one.learner.model.weights, looped.learner.model.weights):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-9)
    for a, b in zip(one_by_one.learner.optimizer.mean_squares,
                    looped.learner.optimizer.mean_squares):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-9)

  def test_calls_end_at_checkpoints_and_epoch_ends(self):
    dataset = data.synthetic(num_train=30 * 16 + 5, num_test=10, seed=2)
    trainer = _trainer(self.get_temp_dir(), dataset, checkpoint_every_steps=7)
    self.assertEqual(trainer.steps_per_epoch, 31)
    ends = []
    step = 0
    for epoch in range(3):
      batch = 0
      while batch < trainer.steps_per_epoch:
        num_steps = trainer._steps_in_next_call(step, batch)  # pylint: disable=protected-access
        self.assertBetween(num_steps, 1, loop.STEPS_PER_CALL)
        batch += num_steps
        step += num_steps
        ends.append(step)
      self.assertEqual(step, (epoch + 1) * 31)
    for multiple in range(7, 93, 7):
      self.assertIn(multiple, ends)
    for epoch_end in (31, 62, 93):
      self.assertIn(epoch_end, ends)
