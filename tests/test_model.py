"""ConvNet: shapes, parameter count, dropout, and the TF1 forward pass as oracle."""

from unittest import mock

import numpy as np
import tensorflow as tf

from tf_raw import model as model_lib


def _tf1_logits(weights, images):
  """The notebook's forward pass, dropout off, run by TF1's graph ops."""
  graph = tf.Graph()
  with graph.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
    w, w2, w3, w4, w_o = [tf.constant(v) for v in weights]
    l1 = tf.compat.v1.nn.max_pool(tf.nn.relu(tf.compat.v1.nn.conv2d(
        x, w, strides=[1, 1, 1, 1], padding="SAME")),
        ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    l2 = tf.compat.v1.nn.max_pool(tf.nn.relu(tf.compat.v1.nn.conv2d(
        l1, w2, strides=[1, 1, 1, 1], padding="SAME")),
        ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    l3 = tf.compat.v1.nn.max_pool(tf.nn.relu(tf.compat.v1.nn.conv2d(
        l2, w3, strides=[1, 1, 1, 1], padding="SAME")),
        ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    l3 = tf.reshape(l3, [-1, w4.get_shape().as_list()[0]])
    l4 = tf.nn.relu(tf.matmul(l3, w4))
    logits = tf.matmul(l4, w_o)
    with tf.compat.v1.Session(graph=graph) as sess:
      return sess.run(logits, {x: images})


class ConvNetTest(tf.test.TestCase):

  def test_parameter_count_matches_the_notebook(self):
    net = model_lib.ConvNet(seed=0)
    self.assertEqual(_count_parameters(net), 1_379_274)
    self.assertEqual([tuple(v.shape) for v in net.weights],
                     list(model_lib.WEIGHT_SHAPES.values()))

  def test_pooling_halves_the_image_three_times(self):
    net = model_lib.ConvNet(seed=0)
    traced = tf.function(net).get_concrete_function(
        tf.TensorSpec([7, 32, 32, 3], tf.float32))
    pool_shapes = [op.outputs[0].shape.as_list()
                   for op in traced.graph.get_operations()
                   if op.type == "MaxPool"]
    self.assertEqual(pool_shapes, [[7, 16, 16, 32], [7, 8, 8, 64],
                                   [7, 4, 4, 128]])
    self.assertEqual(traced.structured_outputs.shape.as_list(), [7, 10])

  def test_initial_weights_have_the_requested_stddev(self):
    net = model_lib.ConvNet(init_stddev=0.01, seed=3)
    values = net.w_fc.numpy()
    self.assertAllClose(values.std(), 0.01, rtol=0.01)
    self.assertAllClose(values.mean(), 0.0, atol=1e-4)

  def test_seed_fixes_initial_weights(self):
    a, b, c = (model_lib.ConvNet(seed=s) for s in (1, 1, 2))
    self.assertAllEqual(a.w_c2, b.w_c2)
    self.assertNotAllClose(a.w_c2, c.w_c2)

  def test_forward_pass_matches_tf1_graph(self):
    net = model_lib.ConvNet(init_stddev=0.1, seed=0)
    images = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    expected = _tf1_logits([v.numpy() for v in net.weights], images)
    self.assertAllClose(net(images), expected, rtol=1e-5, atol=1e-6)

  def test_dropout_off_is_deterministic(self):
    net = model_lib.ConvNet(seed=0)
    images = tf.random.stateless_uniform([8, 32, 32, 3], seed=[1, 2])
    self.assertAllEqual(net(images), net(images))

  def test_dropout_masks_follow_the_seed(self):
    net = model_lib.ConvNet(init_stddev=0.1, seed=0)
    images = tf.random.stateless_uniform([8, 32, 32, 3], seed=[1, 2])
    def run(seed):
      return net(images, 0.8, 0.5, tf.constant(seed, tf.int64))
    self.assertAllEqual(run([0, 5]), run([0, 5]))
    self.assertNotAllClose(run([0, 5]), run([0, 6]))
    self.assertNotAllClose(run([0, 5]), net(images))

  def test_model_dropout_keeps_keep_prob_and_rescales_by_its_inverse(self):
    # The model's own masks, caught as they are applied (the one multiply
    # named "dropout" per layer): TF1's keep_prob is the fraction KEPT, and
    # kept values are scaled by 1 / keep_prob. 0.8 and 0.3, not 0.5, so that
    # a mask built from rate where 1 - keep_prob belongs keeps the wrong share.
    net = model_lib.ConvNet(init_stddev=0.1, seed=0)
    images = tf.random.stateless_uniform([32, 32, 32, 3], seed=[1, 2])
    masks = {}
    multiply = tf.math.multiply

    def spy(x, y, name=None):
      if name == "dropout":
        masks[len(masks)] = y.numpy()
      return multiply(x, y, name=name)

    with mock.patch.object(tf.math, "multiply", spy):
      net(images, 0.8, 0.3, tf.constant([4, 7], tf.int64))
    self.assertLen(masks, 5)  # conv1, conv2, conv3, flat, hidden.
    for index, mask in masks.items():
      keep = 0.3 if index == 4 else 0.8
      kept = mask != 0
      self.assertAllClose(kept.mean(), keep, atol=0.02, msg=f"mask {index}")
      self.assertAllClose(mask[kept], np.full(kept.sum(), 1 / keep,
                                              np.float32))

  def test_scale_images_maps_uint8_to_unit_interval(self):
    images = tf.constant([[[[0, 51, 255]]]], tf.uint8)
    self.assertAllClose(model_lib.scale_images(images), [[[[0.0, 0.2, 1.0]]]])


def _count_parameters(module):
  """Total number of scalars in `module.trainable_variables`."""
  return sum(int(tf.size(v)) for v in module.trainable_variables)
