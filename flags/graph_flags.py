"""Flags of `python -m tf_raw.graph` (the op graph of one training step)."""

from absl import flags

API = flags.DEFINE_enum(
    "api", "v2", ["v2", "v1"],
    "Whose training step to show. v2: this project's traced "
    "Trainer.train_step (a tf.function's FuncGraph); v1: the notebook's TF1 "
    "graph (tf_raw/tf1_graph.py).")
LOGDIR = flags.DEFINE_string(
    "logdir", None,
    "Also write the graph here for TensorBoard (tensorboard --logdir=DIR, "
    "Graphs tab). Default: print only.")
KEEP_PROB_CONV = flags.DEFINE_float(
    "keep_prob_conv", 0.8,
    "Dropout keep probability after the conv blocks; 1 leaves the dropout "
    "ops out of the TF2 graph. Notebook: 0.8.")
KEEP_PROB_HIDDEN = flags.DEFINE_float(
    "keep_prob_hidden", 0.5,
    "Dropout keep probability after the hidden layer. Notebook: 0.5.")

flags.register_validator(
    "keep_prob_conv", lambda v: 0.0 < v <= 1.0,
    "--keep_prob_conv must be in (0, 1]: it is a keep probability.")
flags.register_validator(
    "keep_prob_hidden", lambda v: 0.0 < v <= 1.0,
    "--keep_prob_hidden must be in (0, 1]: it is a keep probability.")
