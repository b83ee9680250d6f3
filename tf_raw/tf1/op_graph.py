"""Reads a traced training graph: which ops run, layer shapes, parameters, FLOPs.

The library behind `python -m tf_raw.tf1.graph`. Everything is computed from the
graph itself (op types, static shapes, what feeds what), never typed in, so
it works the same on the TF2 train step's `FuncGraph` and on the notebook's
TF1 `tf.Graph`:

    live_ops(graph, roots) -> ops that run; dead_ops(graph, roots)
    forward_layers(ops) -> [(op, output shape)] from the input to the logits
    macs_per_image(op) -> multiply-adds of one conv/matmul op, per image
    analyse(graph, roots) -> GraphReport (all of the above, summed)
    format_report(report, title) -> the lines the program prints

Counting convention: one multiply-add (MAC) = 2 FLOPs; only convolutions and
matrix products are counted (ReLU, pooling, dropout, the loss and RMSProp are
elementwise and comparatively cheap). For this network, per image:

    forward      11,608,170 MACs  (conv1 884,736; conv2 and conv3 4,718,592
                                   each; fc 1,280,000; logits 6,250)
    backward     weight gradients: the same 11,608,170 again;
                 input gradients: the same minus conv1's 884,736 (no one
                 needs the gradient of the images)
    training     2 x (3 x 11,608,170 - 884,736) = 67,879,548 FLOPs (67.9 M)
"""

import collections
import dataclasses
import math

# Ops whose multiply-adds we count.
MAC_OP_TYPES = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter",
                "MatMul")
# Ops that make up a layer of the forward pass, as a learner would list them.
LAYER_OP_TYPES = ("Conv2D", "Relu", "MaxPool", "Reshape", "MatMul")


def _is_stateful(op):
  op_def = getattr(op, "op_def", None)
  return op_def is None or op_def.is_stateful


def _ancestors(roots):
  """The ops that running `roots` executes.

  An op runs if it is a root, if a running op reads its output (a data edge),
  or if it is stateful (a variable update, an assert) and a running op waits
  for it (a control edge). A control edge to a stateless op is dropped:
  ordering a pure computation changes nothing, and TensorFlow's graph
  optimizer (Grappler) removes such edges. One case here: TF1's `minimize()`
  groups each op's input gradients (`gate_gradients=GATE_OP`), so the
  notebook's graph makes conv1's kernel gradient wait for the gradient of
  the images; Grappler drops that wait and never computes the latter.
  """
  seen = set()
  stack = list(roots)
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    stack.extend(tensor.op for tensor in op.inputs)
    stack.extend(dep for dep in op.control_inputs
                 if _is_stateful(dep) or dep.type == "NoOp")
  return seen


def live_ops(graph, roots):
  """The ops of `graph` that running `roots` executes, in creation order.

  TensorFlow prunes the rest before running: a `Session.run` executes only
  what its fetches need, a `tf.function` only what its outputs and stateful
  ops (variable updates) need (see `_ancestors` for the rule).

  Args:
    graph: a `tf.Graph` or a `tf.function`'s `FuncGraph`.
    roots: the ops that are run (fetches, outputs, control outputs).
  """
  needed = _ancestors(roots)
  return [op for op in graph.get_operations() if op in needed]


def dead_ops(graph, roots):
  """Ops traced into `graph` that nothing needs (they never run)."""
  needed = _ancestors(roots)
  return [op for op in graph.get_operations() if op not in needed]


def _static_dims(shape):
  """Dimensions of a TensorShape as a list; the batch (None) counts as 1."""
  return [1 if dim is None else dim for dim in shape.as_list()]


def macs_per_image(op):
  """Multiply-adds one image costs in `op` (a conv or matmul), else 0.

  Read from static shapes (the batch dimension is unknown, None, in a graph
  traced for any batch size, and counts as 1):

  * Conv2D: out_h * out_w * out_c * (k_h * k_w * in_c).
  * Conv2DBackpropInput (the gradient of a conv's input) and
    Conv2DBackpropFilter (of its kernel): the same products as the forward
    conv, read from the output gradient and the kernel shape.
  * MatMul [M, K] x [K, N]: M * N * K with the batch dimension (whichever of
    M, N or K it is) counted once.
  """
  if op.type == "Conv2D":
    _, out_h, out_w, out_c = _static_dims(op.outputs[0].shape)
    k_h, k_w, in_c, _ = _static_dims(op.inputs[1].shape)
  elif op.type == "Conv2DBackpropInput":  # (input_sizes, filter, out_backprop)
    _, out_h, out_w, out_c = _static_dims(op.inputs[2].shape)
    k_h, k_w, in_c, _ = _static_dims(op.inputs[1].shape)
  elif op.type == "Conv2DBackpropFilter":  # (input, filter_sizes, out_backprop)
    _, out_h, out_w, out_c = _static_dims(op.inputs[2].shape)
    k_h, k_w, in_c, _ = _static_dims(op.outputs[0].shape)
  elif op.type == "MatMul":
    rows, inner = _static_dims(op.inputs[0].shape)
    if op.get_attr("transpose_a"):
      rows, inner = inner, rows
    columns = _static_dims(op.inputs[1].shape)[
        0 if op.get_attr("transpose_b") else 1]
    return rows * columns * inner
  else:
    return 0
  return out_h * out_w * out_c * k_h * k_w * in_c


def _logits_op(ops):
  """The op computing the logits: what the cross-entropy's reshape reads."""
  losses = [op for op in ops if op.type == "SoftmaxCrossEntropyWithLogits"]
  assert len(losses) == 1, [op.name for op in losses]
  logits_op = losses[0].inputs[0].op
  while logits_op.type in ("Reshape", "Identity"):  # Its [B, 10] -> [B, 10].
    logits_op = logits_op.inputs[0].op
  return logits_op


def _is_dropout(op):
  """The op whose output is a dropout's output.

  TF1's tf.nn.dropout (and TF2's) end in a SelectV2 in a "dropout" scope that
  picks the scaled value or zero; `model.ConvNet` ends its dropout in a
  multiply by the mask, named "dropout".
  """
  if op.type == "SelectV2":
    return "dropout" in op.name
  return op.type == "Mul" and op.name.rsplit("/", 1)[-1].startswith("dropout")


def forward_layers(ops):
  """The forward pass from the first conv to the logits, one row per op.

  Args:
    ops: the live ops of a training graph (one with a softmax cross-entropy).

  Returns:
    [(op, output TensorShape)] in creation order: convs, ReLUs, pools,
    dropouts, the flatten and the matmuls.
  """
  forward = _ancestors([_logits_op(ops)])
  return [(op, op.outputs[0].shape) for op in ops if op in forward and (
      op.type in LAYER_OP_TYPES or _is_dropout(op))]


@dataclasses.dataclass
class GraphReport:
  """What `analyse` finds; MACs and FLOPs are per image."""

  num_ops: int
  live_op_counts: collections.Counter  # op type -> how many run.
  dead: list  # Ops traced but never run.
  input_shape: object  # TensorShape of the first conv's input.
  layers: list  # [(op, TensorShape)], see forward_layers.
  parameters: int
  forward_macs: int
  weight_gradient_macs: int
  input_gradient_macs: int
  dead_macs: int  # MACs of dead conv/matmul ops (traced, never run).

  @property
  def training_flops(self):
    """2 FLOPs per MAC over the forward pass and both kinds of gradient."""
    return 2 * (self.forward_macs + self.weight_gradient_macs +
                self.input_gradient_macs)


def analyse(graph, roots):
  """Analyses one training step's graph.

  Args:
    graph: the traced step (`FuncGraph` or TF1 `tf.Graph`).
    roots: the ops one step runs (outputs, control outputs / fetches).

  Returns:
    A `GraphReport`.
  """
  ops = live_ops(graph, roots)
  layers = forward_layers(ops)
  forward = {op for op, _ in layers}
  # The weights are what the forward convs and matmuls read as their second
  # operand (no biases here): their sizes add up to the parameter count.
  weight_ops = [op for op in forward if op.type in ("Conv2D", "MatMul")]
  parameters = sum(math.prod(op.inputs[1].shape.as_list())
                   for op in weight_ops)
  weight_gradient_macs = input_gradient_macs = 0
  for op in ops:
    if op in forward or op.type not in MAC_OP_TYPES:
      continue
    # A gradient's output with no batch dimension is a weight's gradient;
    # one with a batch dimension flows on to the layer below.
    if None in op.outputs[0].shape.as_list():
      input_gradient_macs += macs_per_image(op)
    else:
      weight_gradient_macs += macs_per_image(op)
  dead = dead_ops(graph, roots)
  first_conv = next(op for op, _ in layers if op.type == "Conv2D")
  return GraphReport(
      num_ops=len(graph.get_operations()),
      live_op_counts=collections.Counter(op.type for op in ops),
      dead=dead, input_shape=first_conv.inputs[0].shape, layers=layers,
      parameters=parameters,
      forward_macs=sum(macs_per_image(op) for op in forward),
      weight_gradient_macs=weight_gradient_macs,
      input_gradient_macs=input_gradient_macs,
      dead_macs=sum(macs_per_image(op) for op in dead))


def _shape(shape):
  """(None, 32, 32, 3) -> "(B, 32, 32, 3)"."""
  dims = ["B" if dim is None else str(dim) for dim in shape.as_list()]
  return "(" + ", ".join(dims) + ")"


def _millions(value):
  return f"{value:,} ({value / 1e6:.1f} M)"


def _columns(pairs, columns=3):
  """Lays out (name, count) pairs in aligned columns."""
  width = max(len(f"{name} {count}") for name, count in pairs) + 3
  return ["  " + "".join(f"{name + ' ' + str(count):<{width}}"
                         for name, count in pairs[start:start + columns])
          .rstrip() for start in range(0, len(pairs), columns)]


def _by_count(counter):
  return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def format_report(report, title):
  """The program's output, as a list of lines."""
  name_width = max(len(op.name) for op, _ in report.layers) + 2
  lines = [title,
           f"{report.num_ops} ops traced, {sum(report.live_op_counts.values())}"
           f" run, {len(report.dead)} never run.", "",
           "Forward pass, shape after each op (B = images in the batch):",
           f"  {'input':<9} {'':<{name_width}} {_shape(report.input_shape)}"]
  for op, shape in report.layers:
    macs = macs_per_image(op)
    label = "dropout" if _is_dropout(op) else op.type
    lines.append((f"  {label:<9} {op.name:<{name_width}} {_shape(shape):<17}"
                  + (f" {macs:>11,} MACs/image" if macs else "")).rstrip())
  lines += ["", "Op types that run, with counts:"]
  lines += _columns(_by_count(report.live_op_counts))
  if report.dead:
    lines += ["", f"Traced but never run ({len(report.dead)} ops that nothing "
              "needs; TensorFlow prunes them before running):"]
    lines += _columns(_by_count(collections.Counter(
        op.type for op in report.dead)))
  lines += [
      "",
      f"Parameters: {report.parameters:,} (the kernels the convs and matmuls "
      "read; no biases).",
      f"Multiply-adds per image, forward: {_millions(report.forward_macs)}.",
      f"Training FLOPs per image: {_millions(report.training_flops)}",
      f"  = 2 x (forward {report.forward_macs:,} + weight gradients "
      f"{report.weight_gradient_macs:,} + input gradients "
      f"{report.input_gradient_macs:,} MACs);",
      "  2 FLOPs per multiply-add, convolutions and matmuls only."]
  for op in report.dead:
    macs = macs_per_image(op)
    if not macs:
      continue
    shape = op.outputs[0].shape
    why = (": the gradient of the input images, which nothing needs"
           if shape.as_list() == report.input_shape.as_list() else "")
    lines += [f"  Not counted: {op.name} ({op.type}, {macs:,} MACs/image,",
              f"  output {_shape(shape)}){why}."]
  return lines
