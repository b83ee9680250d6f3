"""ConvNet: shapes, parameter count, dropout, and the TF1 forward pass as oracle."""

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

  def test_dropout_keeps_the_expected_fraction_and_rescales(self):
    # The same op the model uses, on ones: kept values are 1 / keep_prob.
    ones = tf.ones([200_000])
    dropped = tf.nn.experimental.stateless_dropout(ones, rate=0.2,
                                                   seed=[3, 4]).numpy()
    kept = dropped != 0
    self.assertAllClose(kept.mean(), 0.8, atol=0.005)
    self.assertAllClose(dropped[kept], np.full(kept.sum(), 1 / 0.8))

  def test_scale_images_maps_uint8_to_unit_interval(self):
    images = tf.constant([[[[0, 51, 255]]]], tf.uint8)
    self.assertAllClose(model_lib.scale_images(images), [[[[0.0, 0.2, 1.0]]]])


def _count_parameters(module):
  """Total number of scalars in `module.trainable_variables`."""
  return sum(int(tf.size(v)) for v in module.trainable_variables)
