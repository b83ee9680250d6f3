r"""Trains the notebook's CIFAR-10 network: `python -m tf_raw.train --epochs=50`.

Every setting is a flag (`--helpfull` lists them with the notebook's values).
The run lives in `--model_dir`: checkpoints and `metrics.jsonl`. Running the
same command again continues from the latest checkpoint, exactly. Ctrl-C
(SIGINT) or SIGTERM finishes the current step, saves, and exits 130 or 143;
BUILD.md ("What survives what") lists what survives which failure.

Reproduce the notebook, bugs included:

    python -m tf_raw.train --data_layout=legacy_reshape --noshuffle \
        --drop_remainder
"""

import sys

from absl import app
from absl import flags
from absl import logging

from flags import train_flags  # pylint: disable=g-bad-import-order
from tf_raw import cli

# Show the training flags in this program's --helpshort.
flags.adopt_module_key_flags(train_flags)


def main(argv):
  cli.reject_extra_arguments(argv)
  config = train_flags.to_config()
  # Heavy imports after flag parsing, so --help and usage errors are instant;
  # TensorFlow (seconds to import) only once the run folder and the data
  # passed their checks, which need numpy alone.
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw import run_dir  # pylint: disable=g-import-not-at-top
  try:
    with cli.user_errors(data.DataError, run_dir.RunDirError):
      run_dir.check_writable(config.model_dir)  # Before a long download.
      dataset = data.load(config)
      run_dir.check_identity(config.model_dir,
                             run_dir.run_identity(config, dataset))
    from tf_raw import training  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    tf.get_logger().setLevel("WARNING")  # No per-checkpoint INFO lines,
    logging.set_verbosity(logging.WARNING)  # from either logger.
    if config.deterministic:
      tf.config.experimental.enable_op_determinism()
    with cli.user_errors(run_dir.RunDirError, training.TrainingError):
      trainer = training.Trainer(config, dataset)
      trainer.run()  # SIGINT/SIGTERM: saves, then exits 130/143 itself.
  except KeyboardInterrupt:  # Ctrl-C before training, or a second Ctrl-C.
    print(f"error: interrupted; {config.model_dir} keeps its newest "
          "checkpoint, if any, so run the same command again to continue.",
          file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
