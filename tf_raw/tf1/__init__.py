"""The 2018 notebook's own TF1 graph, runnable, as the oracle for the TF2 code.

`tf1_graph` builds the notebook's graph through `tf.compat.v1` (placeholders,
`Session`, `feed_dict`, `RMSPropOptimizer`), only its 5-D weight typo fixed;
`train_v1` trains with it (`python -m tf_raw.train --api=v1`); `parity` and
the `compare` program step it beside the TF2 `step.Learner` from the same
weights and batches; `op_graph` and the `graph` program list either step's
ops, shapes, parameters and FLOPs. See docs/tf1_to_tf2.md.
"""
