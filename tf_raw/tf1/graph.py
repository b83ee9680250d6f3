r"""Prints the op graph of one training step: what a learner should see.

    python -m tf_raw.tf1.graph                    # the TF2 train step
    python -m tf_raw.tf1.graph --api=v1           # the notebook's TF1 graph
    python -m tf_raw.tf1.graph --logdir=/tmp/graph && tensorboard --logdir=/tmp/graph

It traces `step.Learner.train_step` (or builds `tf1_graph.TF1Graph`) and
prints, all read from the graph (see `tf_raw/op_graph.py`): the shape after
each forward op, the op types that run with their counts, the ops traced but
never run, the parameter count, the multiply-adds per image and the training
FLOPs per image. Sample (TF2, default flags; shortened):

    TF2: step.Learner.train_step, traced once by tf.function (its FuncGraph).
    370 ops traced, 354 run, 16 never run.

    Forward pass, shape after each op (B = images in the batch):
      input                   (B, 32, 32, 3)
      Conv2D    Conv2D        (B, 32, 32, 32)       884,736 MACs/image
      Relu      Relu          (B, 32, 32, 32)
      MaxPool   MaxPool2d     (B, 16, 16, 32)
      dropout   dropout       (B, 16, 16, 32)
      ...
      MatMul    MatMul_1      (B, 10)                 6,250 MACs/image

    Op types that run, with counts:
      Const 109                           Placeholder 20                      Shape 20
      ...
    Parameters: 1,379,274 (the kernels the convs and matmuls read; no biases).
    Multiply-adds per image, forward: 11,608,170 (11.6 M).
    Training FLOPs per image: 67,879,548 (67.9 M)
      = 2 x (forward 11,608,170 + weight gradients 11,608,170 + input gradients 10,723,434 MACs);
      2 FLOPs per multiply-add, convolutions and matmuls only.
      Not counted: gradient_tape/Conv2DBackpropInput_2 (Conv2DBackpropInput, 884,736 MACs/image,
      output (B, 32, 32, 3)): the gradient of the input images, which nothing needs.

`--api=v1` shows the notebook's graph: the same layers and costs (its TF1
`minimize()` also ties the image gradient in, with a control edge that
Grappler removes; see `op_graph._ancestors`).
"""


from absl import app
from absl import flags

from flags import graph_flags  # pylint: disable=g-bad-import-order
from flags import cli

flags.adopt_module_key_flags(graph_flags)


def _tf2_step_graph(keep_prob_conv, keep_prob_hidden):
  """(FuncGraph, roots, title) of the traced TF2 train step."""
  # pylint: disable=g-import-not-at-top
  from tf_raw import config as config_lib
  from tf_raw import step as step_lib

  config = config_lib.TrainConfig(keep_prob_conv=keep_prob_conv,
                                  keep_prob_hidden=keep_prob_hidden)
  learner = step_lib.Learner(config)
  # Tracing only: nothing runs.
  step = learner.train_step.get_concrete_function()
  graph = step.graph
  # What a call runs: the ops behind its outputs, plus its stateful ops
  # (the variable updates), which tf.function keeps as control outputs.
  roots = [tensor.op for tensor in graph.outputs] + list(graph.control_outputs)
  return graph, roots, ("TF2: step.Learner.train_step, traced once by "
                        "tf.function (its FuncGraph).")


def _tf1_graph(keep_prob_conv, keep_prob_hidden):
  """(tf.Graph, roots, title) of the notebook's TF1 graph."""
  del keep_prob_conv, keep_prob_hidden  # Placeholders there, fed at run time.
  from tf_raw.tf1 import tf1_graph  # pylint: disable=g-import-not-at-top
  notebook = tf1_graph.TF1Graph()
  notebook.close()
  # What sess.run([train_op, cost], feed_dict) runs.
  return notebook.graph, [notebook.train_op, notebook.cost.op], (
      "TF1: the notebook's graph (tf1_graph.TF1Graph), as "
      "sess.run([train_op, cost]) runs it.")


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  api, logdir = graph_flags.API.value, graph_flags.LOGDIR.value
  keep_probs = (graph_flags.KEEP_PROB_CONV.value,
                graph_flags.KEEP_PROB_HIDDEN.value)
  # Heavy imports after flag parsing, so --help and usage errors are instant.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_raw.tf1 import op_graph  # pylint: disable=g-import-not-at-top

  tf.get_logger().setLevel("ERROR")
  build = _tf2_step_graph if api == "v2" else _tf1_graph
  graph, roots, title = build(*keep_probs)
  report = op_graph.analyse(graph, roots)
  print("\n".join(op_graph.format_report(report, title)))
  if logdir:
    with cli.user_errors(tf.errors.OpError, OSError):
      writer = tf.summary.create_file_writer(logdir)
      with writer.as_default():
        tf.summary.graph(graph)
      writer.close()
    print(f"\nWrote the graph to {logdir}; see it with: tensorboard "
          f"--logdir={logdir} (Graphs tab).")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
