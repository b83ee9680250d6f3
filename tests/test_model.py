"""ConvNet: shapes, parameter count, dropout, and the TF1 forward pass as oracle."""

from unittest import mock

import numpy as np
import tensorflow as tf

from tf_raw import data
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

  def test_model_dropout_mask_is_stateless_dropouts_even_at_the_boundary(self):
    # The oracle: tf.nn.experimental.stateless_dropout, whose kept values are
    # those with uniform >= rate. A draw exactly equal to the rate (1 in 2^23
    # per value) must be kept too; dropout seed [0, 836] gives conv1 such a
    # draw of 0.5 at [0, 2, 15, 2] for two images (found by a search), so
    # keep_prob 0.5 puts one value right on the boundary.
    net = model_lib.ConvNet(init_stddev=0.1, seed=0)
    dropout_seed = tf.constant([0, 836], tf.int64)
    conv1_seed = tf.random.experimental.stateless_fold_in(dropout_seed, 0)
    uniform = tf.random.stateless_uniform([2, 16, 16, 32], seed=conv1_seed)
    self.assertEqual(float(uniform[0, 2, 15, 2]), 0.5)
    masks = []
    multiply = tf.math.multiply

    def spy(x, y, name=None):
      if name == "dropout":
        masks.append(y.numpy())
      return multiply(x, y, name=name)

    images = tf.random.stateless_uniform([2, 32, 32, 3], seed=[1, 2])
    with mock.patch.object(tf.math, "multiply", spy):
      net(images, 0.5, 1.0, dropout_seed)
    expected = tf.nn.experimental.stateless_dropout(
        tf.ones([2, 16, 16, 32]), rate=0.5, seed=conv1_seed)
    self.assertEqual(float(expected[0, 2, 15, 2]), 2.0)
    self.assertAllEqual(masks[0], expected)

  def test_image_shape_is_cifars_and_the_networks_input(self):
    # The traced steps' and the SavedModel's input signatures are built from
    # IMAGE_SHAPE: it must be the shape data.py reads CIFAR-10 into (an
    # independent statement of 32x32 RGB) and one the network accepts.
    self.assertEqual(model_lib.IMAGE_SHAPE,
                     (data.IMAGE_SIZE, data.IMAGE_SIZE, data.NUM_CHANNELS))
    net = model_lib.ConvNet(seed=0)
    self.assertEqual(net(tf.zeros([2, *model_lib.IMAGE_SHAPE])).shape, (2, 10))

  def test_default_stddev_is_the_notebooks_and_unseeded_weights_are_random(self):
    # tf.random_normal(shape, stddev=0.01) in the notebook: the default.
    seeded = model_lib.ConvNet(seed=3)
    for ours, explicit in zip(
        seeded.weights, model_lib.ConvNet(init_stddev=0.01, seed=3).weights):
      self.assertAllEqual(ours, explicit)
    # Without a seed, stateful normal draws of that stddev, new each time.
    first, second = model_lib.ConvNet(), model_lib.ConvNet()
    self.assertAllClose(first.w_fc.numpy().std(), 0.01, rtol=0.01)
    self.assertAllClose(first.w_fc.numpy().mean(), 0.0, atol=1e-4)
    self.assertNotAllClose(first.w_fc, second.w_fc)

  def test_variables_are_named_as_the_walkthrough_prints_them(self):
    # The notebook's variable table and the "different model" checkpoint
    # error quote these names (module name / attribute).
    self.assertEqual([v.name for v in model_lib.ConvNet(seed=0).weights],
                     ["conv_net/w_c1:0", "conv_net/w_c2:0", "conv_net/w_c3:0",
                      "conv_net/w_fc:0", "conv_net/w_o:0"])

  def test_num_classes_sizes_the_output_layer(self):
    net = model_lib.ConvNet(seed=0, num_classes=7)
    self.assertEqual(net.num_classes, 7)  # The loss one-hot encodes with it.
    self.assertEqual(tuple(net.w_o.shape), (model_lib.HIDDEN_UNITS, 7))
    self.assertEqual(net(tf.zeros([3, 32, 32, 3])).shape, (3, 7))

  def test_mixed_bfloat16_runs_the_layers_in_bfloat16_on_float32_weights(self):
    full = model_lib.ConvNet(init_stddev=0.1, seed=0)
    mixed = model_lib.ConvNet(init_stddev=0.1, seed=0,
                              precision="mixed_bfloat16")
    self.assertEqual({v.dtype for v in mixed.weights}, {tf.float32})
    images = tf.random.stateless_uniform([4, 32, 32, 3], seed=[1, 2])
    traced = tf.function(mixed).get_concrete_function(images)
    conv_types = {op.get_attr("T") for op in traced.graph.get_operations()
                  if op.type in ("Conv2D", "MatMul")}
    self.assertEqual(conv_types, {tf.bfloat16})
    logits = mixed(images)
    self.assertEqual(logits.dtype, tf.float32)
    # bfloat16 keeps 8 significant bits: close to float32's logits, not equal.
    expected = full(images).numpy()
    scale = np.abs(expected).max()
    self.assertAllClose(logits, expected, atol=0.02 * scale, rtol=0)
    self.assertNotAllEqual(logits, expected)

  def test_scale_images_maps_uint8_to_unit_interval(self):
    images = tf.constant([[[[0, 51, 255]]]], tf.uint8)
    self.assertAllClose(model_lib.scale_images(images), [[[[0.0, 0.2, 1.0]]]])


def _count_parameters(module):
  """Total number of scalars in `module.trainable_variables`."""
  return sum(int(tf.size(v)) for v in module.trainable_variables)
