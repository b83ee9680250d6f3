"""op_graph: what it reads from the traced graphs, against hand computations
from the notebook's shapes and against what a Session actually executes."""

import os

import numpy as np
import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import model as model_lib
from tf_raw.tf1 import op_graph
from tf_raw.tf1 import tf1_graph
from tf_raw.run_folder import guard


def _hand_counts():
  """Multiply-adds per image, from the weight shapes alone.

  A 3x3 SAME conv costs (output pixels) x (k_h k_w in_c) x out_c; the image is
  32x32 at conv1 and halves after each pool. A matmul costs in x out.
  """
  size, conv_macs = 32, []
  for name in ("w_c1", "w_c2", "w_c3"):
    k_h, k_w, in_c, out_c = model_lib.WEIGHT_SHAPES[name]
    conv_macs.append(size * size * k_h * k_w * in_c * out_c)
    size //= 2
  dense_macs = [np.prod(model_lib.WEIGHT_SHAPES[name])
                for name in ("w_fc", "w_o")]
  return conv_macs, int(sum(conv_macs) + sum(dense_macs))


CONV_MACS, FORWARD_MACS = _hand_counts()
# Forward, then the gradient of every weight (the same products again), then
# the gradient of every layer's input except the images'.
TRAINING_FLOPS = 2 * (3 * FORWARD_MACS - CONV_MACS[0])


class HandCountsTest(tf.test.TestCase):

  def test_the_brief_numbers(self):
    self.assertEqual(CONV_MACS[0], 884_736)
    self.assertEqual(FORWARD_MACS, 11_608_170)   # "about 11.6 M"
    self.assertEqual(TRAINING_FLOPS, 67_879_548)  # "about 67.9 M"


class TF2StepTest(tf.test.TestCase):
  """The traced Trainer.train_step, dropout on as in the notebook."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    config = config_lib.TrainConfig(
        dataset="synthetic",
        model_dir=os.path.join(tf.compat.v1.test.get_temp_dir(), "graph"))
    cls.trainer = guard.GuardedTrainer(config, data.synthetic(1, 1),
                                   out=lambda line: None)
    graph = cls.trainer.learner.train_step.get_concrete_function().graph
    roots = [t.op for t in graph.outputs] + list(graph.control_outputs)
    cls.report = op_graph.analyse(graph, roots)

  def test_parameters_and_costs_match_the_hand_counts(self):
    self.assertEqual(self.report.parameters,
                     _count_parameters(self.trainer.learner.model))
    self.assertEqual(self.report.parameters, 1_379_274)
    self.assertEqual(self.report.forward_macs, FORWARD_MACS)
    self.assertEqual(self.report.weight_gradient_macs, FORWARD_MACS)
    self.assertEqual(self.report.input_gradient_macs,
                     FORWARD_MACS - CONV_MACS[0])
    self.assertEqual(self.report.training_flops, TRAINING_FLOPS)

  def test_layer_shapes_follow_the_network(self):
    rows = [(op.type, tuple(shape.as_list()))
            for op, shape in self.report.layers]
    expected = []
    for size, channels in ((32, 32), (16, 64), (8, 128)):
      expected += [("Conv2D", (None, size, size, channels)),
                   ("Relu", (None, size, size, channels)),
                   ("MaxPool", (None, size // 2, size // 2, channels)),
                   ("Mul", (None, size // 2, size // 2, channels))]
    expected += [("Reshape", (None, 2048)), ("Mul", (None, 2048)),
                 ("MatMul", (None, 625)), ("Relu", (None, 625)),
                 ("Mul", (None, 625)), ("MatMul", (None, 10))]
    self.assertEqual(rows, expected)
    self.assertEqual(self.report.input_shape.as_list(), [None, 32, 32, 3])

  def test_the_image_gradient_is_traced_but_never_run(self):
    counts = self.report.live_op_counts
    self.assertEqual(counts["Conv2D"], 3)
    self.assertEqual(counts["Conv2DBackpropFilter"], 3)
    self.assertEqual(counts["Conv2DBackpropInput"], 2)
    self.assertEqual(counts["MatMul"], 6)
    self.assertEqual(counts["ResourceApplyRMSProp"], 5)
    dead_macs = [op for op in self.report.dead if op_graph.macs_per_image(op)]
    self.assertEqual([op.type for op in dead_macs], ["Conv2DBackpropInput"])
    self.assertEqual(dead_macs[0].outputs[0].shape.as_list(),
                     [None, 32, 32, 3])
    self.assertEqual(self.report.dead_macs, CONV_MACS[0])

  def test_report_prints_the_numbers(self):
    text = "\n".join(op_graph.format_report(self.report, "title"))
    self.assertIn("Parameters: 1,379,274", text)
    self.assertIn("forward: 11,608,170 (11.6 M)", text)
    self.assertIn("Training FLOPs per image: 67,879,548 (67.9 M)", text)
    self.assertIn("(B, 16, 16, 32)", text)


class TF1GraphTest(tf.test.TestCase):
  """The notebook's graph: the same costs, and the runtime agrees."""

  def test_same_costs_and_the_session_runs_exactly_the_counted_ops(self):
    with tf1_graph.TF1Graph(seed=0) as notebook:
      roots = [notebook.train_op, notebook.cost.op]
      report = op_graph.analyse(notebook.graph, roots)
      self.assertEqual(report.parameters, 1_379_274)
      self.assertEqual(report.forward_macs, FORWARD_MACS)
      self.assertEqual(report.training_flops, TRAINING_FLOPS)

      # Oracle: the ops one sess.run actually executed, from its trace.
      options = tf.compat.v1.RunOptions(
          trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
      metadata = tf.compat.v1.RunMetadata()
      images = np.zeros([2, 32, 32, 3], np.float32)
      notebook.session.run(roots, {
          notebook.X: images, notebook.Y: tf1_graph.to_one_hot([1, 2]),
          notebook.p_keep_conv: 0.8, notebook.p_keep_hidden: 0.5},
                           options=options, run_metadata=metadata)
      executed = {node.node_name for device in metadata.step_stats.dev_stats
                  for node in device.node_stats}
      gradient_types = ("Conv2DBackpropInput", "Conv2DBackpropFilter")
      graph_ops = notebook.graph.get_operations()
      ran = {op.name for op in graph_ops
             if op.type in gradient_types and op.name in executed}
      counted = {op.name for op in op_graph.live_ops(notebook.graph, roots)
                 if op.type in gradient_types}
      self.assertEqual(ran, counted)
      self.assertLen(ran, 5)
      # TF1's minimize() makes conv1's kernel gradient wait on the image
      # gradient (gate_gradients=GATE_OP), yet Grappler never computes it.
      image_gradient = [op for op in graph_ops
                        if op.type == "Conv2DBackpropInput" and
                        op.outputs[0].shape.as_list() == [None, 32, 32, 3]]
      self.assertLen(image_gradient, 1)
      self.assertNotEmpty(image_gradient[0].outputs[0].consumers())
      self.assertNotIn(image_gradient[0].name, executed)


if __name__ == "__main__":
  tf.test.main()


def _count_parameters(module):
  """Total number of scalars in `module.trainable_variables`."""
  return sum(int(tf.size(v)) for v in module.trainable_variables)
