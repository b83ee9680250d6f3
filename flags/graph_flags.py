"""Flags of `python -m tf_raw.tf1.graph` (the op graph of one training step)."""

from absl import flags

from flags import common_flags

API = flags.DEFINE_enum(
    "api", "v2", ["v2", "v1"],
    "Whose training step to show. v2: this project's traced "
    "step.Learner.train_step (a tf.function's FuncGraph); v1: the notebook's "
    "TF1 graph (tf_raw/tf1/tf1_graph.py).")
LOGDIR = flags.DEFINE_string(
    "logdir", None,
    "Also write the graph here for TensorBoard (tensorboard --logdir=DIR, "
    "Graphs tab). Default: print only.")
KEEP_PROB_CONV, KEEP_PROB_HIDDEN = common_flags.define_keep_probs().values()

# The shared flags count as this module's own (--helpshort, flags.txt).
flags.adopt_module_key_flags(common_flags)
