r"""Runs the notebook's TF1 graph and the TF2 code side by side, step by step.

    python -m tf_raw.tf1.compare                 # 50 steps, synthetic data
    python -m tf_raw.tf1.compare --dataset=cifar10 --data_dir=DIR --steps=20
    python -m tf_raw.tf1.compare --trap=keras_rmsprop   # watch a porting bug

Both sides start from the same weights and take the same batches in the same
order; the TF2 side is the real `step.Learner.train_step`, the TF1 side
`tf1_graph.TF1Graph` (`tf_raw/tf1/parity.py` does the work). Each step prints
both losses and the largest difference between any two corresponding weights;
at the end it compares the RMSProp slots and the test-set predictions of the
raw weights (the TF1 graph keeps no moving average; the TF2 side's, which
evaluation uses, is reported beside them). If any
difference exceeds --tolerance the program says so and exits 1.

Sample output (defaults; 2-core AMD CPU, TF 2.21, oneDNN on; with it off the
two sides agree bit for bit too, as tests/test_tf1_programs.py checks):

    TF2: step.Learner.train_step (tf.function, GradientTape); TF1: \
tf1_graph.TF1Graph (Session.run, feed_dict).
    Same initial weights (seed 0), same 50 batches of 128 synthetic images; \
dropout off; oneDNN on.
     step   loss TF2    loss TF1    |loss diff|  max |weight diff|
        1   2.3025827   2.3025827   0            0
        2   2.3025846   2.3025846   0            0
      ...
       50   2.3025799   2.3025799   0            0
    RMSProp slots after step 50: max |rms diff| 0, max |momentum diff| 0.
    Test predictions (raw weights on both sides): 1000 of 1000 agree.
    (The TF2 side's moving average of its weights, which evaluation uses, \
predicts 5 of 1000 differently; the TF1 graph keeps none.)
    The two implementations agree at all 50 steps: bit-identical.

(The loss hardly moves in 50 steps: RMSProp's mean square starts at ones, so
the first steps are tiny; the weights do move, identically on both sides.)

Dropout is off by default: TF1's stateful dropout and the TF2 code's
stateless dropout keyed by (seed, step) draw different masks, so with
--keep_prob_conv/--keep_prob_hidden below 1 the runs diverge by design.
"""

from absl import app
from absl import flags

from flags import compare_flags  # pylint: disable=g-bad-import-order
from flags import cli

flags.adopt_module_key_flags(compare_flags)


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  config = compare_flags.to_config()
  # Heavy imports after flag parsing, so --help and usage errors are instant.
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw import sources  # pylint: disable=g-import-not-at-top
  from tf_raw.tf1 import parity  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.get_logger().setLevel("ERROR")
  with cli.user_errors(data.DataError, parity.DivergenceError):
    dataset = sources.load(config.train)
    parity.run(config, dataset)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
