r"""Trains the notebook's CIFAR-10 network: `python -m tf_raw.train --epochs=50`.

Every setting is a flag (`--helpfull` lists them with the notebook's values).
The run lives in `--model_dir`: checkpoints, `metrics.jsonl`, TensorBoard
events (train/, test/), `flags.txt` and `class_names.txt`. Running the same
command again continues from the latest checkpoint;
`--flagfile=<model_dir>/flags.txt` repeats the run's settings.

Reproduce the notebook, bugs included:

    python -m tf_raw.train --data_layout=legacy_reshape --noshuffle \
        --drop_remainder --ema_decay=0

Train with the notebook's own TF1 graph (Session, feed_dict) instead, on the
same flags, data and batches (tf_raw/train_v1.py):

    python -m tf_raw.train --api=v1
"""

import os
import sys

from absl import app
from absl import flags

from flags import train_flags  # pylint: disable=g-bad-import-order
from tf_raw import cli

# Show the training flags in this program's --helpshort.
flags.adopt_module_key_flags(train_flags)


def main(argv):
  cli.reject_extra_arguments(argv)
  config = train_flags.to_config()
  flag_lines = cli.program_flag_lines(__name__)
  # Heavy imports after flag parsing, so --help and usage errors are instant.
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw import progress  # pylint: disable=g-import-not-at-top
  from tf_raw import run_files  # pylint: disable=g-import-not-at-top
  from tf_raw import summaries  # pylint: disable=g-import-not-at-top
  from tf_raw import training  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.get_logger().setLevel("WARNING")  # No per-checkpoint INFO lines.
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  with cli.user_errors(data.DataError, training.TrainingError):
    dataset = data.load(config)
    os.makedirs(config.model_dir, exist_ok=True)
    # flags.txt repeats this run: --flagfile=<model_dir>/flags.txt.
    run_files.write_flags(config.model_dir, flag_lines)
    run_files.write_class_names(config.model_dir, dataset.class_names)
    if config.api == "v1":
      from tf_raw import train_v1  # pylint: disable=g-import-not-at-top
      train_v1.run(config, dataset)
      return
    # A bar on a terminal, plain lines in a log; TensorBoard events always.
    bar = progress.Progress(sys.stdout, config.log_every_steps)
    tensorboard = summaries.TensorBoard(config.model_dir,
                                        config.log_every_steps)
    trainer = training.Trainer(config, dataset, out=bar.print_line,
                               hooks=[tensorboard, bar])
    trainer.run()


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
