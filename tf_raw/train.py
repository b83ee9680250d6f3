r"""Trains the notebook's CIFAR-10 network: `python -m tf_raw.train --epochs=50`.

Every setting is a flag (`--helpfull` lists them with the notebook's values).
The run lives in `--model_dir`: checkpoints, `metrics.jsonl`, TensorBoard
events (train/, test/), `flags.txt` and `class_names.txt`. Running the same
command again continues from the latest checkpoint, exactly;
`--flagfile=<model_dir>/flags.txt` repeats the run's settings. Ctrl-C (SIGINT)
or SIGTERM finishes the current steps, saves, and exits 130 or 143; BUILD.md
("What survives what") lists what survives which failure.

Reproduce the notebook, bugs included:

    python -m tf_raw.train --data_layout=legacy_reshape --noshuffle \
        --drop_remainder --ema_decay=0

Train with the notebook's own TF1 graph (Session, feed_dict) instead, on the
same flags, data and batches (tf_raw/tf1/train_v1.py):

    python -m tf_raw.train --api=v1

Train with bfloat16 layers and float32 weights (faster on CPUs with
AVX512_BF16 or AMX, and on GPUs; tf_raw/model.py says how):

    python -m tf_raw.train --precision=mixed_bfloat16
"""

import sys

from absl import app
from absl import flags
from absl import logging

from flags import train_flags  # pylint: disable=g-bad-import-order
from flags import cli

# Show the training flags in this program's --helpshort.
flags.adopt_module_key_flags(train_flags)


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  config = train_flags.to_config()
  flag_lines = cli.program_flag_lines(__name__)
  # Heavy imports after flag parsing, so --help and usage errors are instant;
  # TensorFlow (seconds to import) only once the run folder and the data
  # passed their checks, which need numpy alone.
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw import sources  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import run_dir  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import run_files  # pylint: disable=g-import-not-at-top
  try:
    with cli.user_errors(data.DataError, run_dir.RunDirError):
      run_dir.check_writable(config.model_dir)  # Before a long download.
      if config.epochs == 0 and not run_dir.has_checkpoints(config.model_dir):
        print(f"Nothing to do: --epochs=0 trains nothing, and "
              f"{config.model_dir} holds no run to continue or evaluate.")
        return
      dataset = sources.load(config)
      if config.api == "v2":  # v1 keeps no checkpoints: nothing to continue.
        run_dir.check_identity(config.model_dir,
                               run_dir.run_identity(config, dataset))
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tf_raw import distribute  # pylint: disable=g-import-not-at-top
    from tf_raw import loop  # pylint: disable=g-import-not-at-top
    from tf_raw.run_folder import guard  # pylint: disable=g-import-not-at-top
    from tf_raw.tools import progress  # pylint: disable=g-import-not-at-top
    from tf_raw.tools import summaries  # pylint: disable=g-import-not-at-top

    tf.get_logger().setLevel("WARNING")  # No per-checkpoint INFO lines,
    logging.set_verbosity(logging.WARNING)  # from either logger.
    # Devices and TF_CONFIG before any other TensorFlow op.
    strategy, worker = None, (0, 1)
    if config.strategy != distribute.DEFAULT:
      from tf_raw.run_folder import workers  # pylint: disable=g-import-not-at-top
      with cli.user_errors(distribute.DistributeError):
        if config.strategy == distribute.MIRRORED:
          distribute.configure_devices(config.replicas)
        else:
          worker = distribute.worker_of_tf_config()
        strategy = workers.start_strategy(config, worker)
    is_chief = worker[0] == 0
    if config.deterministic:
      tf.config.experimental.enable_op_determinism()
    if (config.precision == "mixed_bfloat16"
        and not tf.config.list_physical_devices("GPU")):
      from tf_raw.tools import cpu_features  # pylint: disable=g-import-not-at-top
      if not cpu_features.native_bfloat16():
        print("Note: this CPU has no native bfloat16 (AVX512_BF16 or AMX), "
              "so --precision=mixed_bfloat16 is emulated and may be slower "
              "than float32.", flush=True)
    # flags.txt repeats this run: --flagfile=<model_dir>/flags.txt.
    write_run_files = run_files.WriteRunFiles(flag_lines, dataset.class_names)
    with cli.user_errors(run_dir.RunDirError, loop.TrainingError,
                         data.DataError):
      if config.api == "v1":
        from tf_raw.tf1 import train_v1  # pylint: disable=g-import-not-at-top
        # The same folder discipline as v2: checks, the lock, then files.
        train_v1.run_in_folder(config, dataset, write_run_files)
        return
      out, hooks = (lambda line: None), []  # Other workers: errors only.
      if is_chief:
        # A bar on a terminal, plain lines in a log; TensorBoard events
        # always.
        bar = progress.Progress(sys.stdout, config.log_every_steps)
        tensorboard = summaries.TensorBoard(config.model_dir,
                                            config.log_every_steps)
        out, hooks = bar.print_line, [write_run_files, tensorboard, bar]
      # loop.Trainer (the lesson), wrapped by the run folder's guarantees:
      # checkpoint fallback, the lock, Ctrl-C saving first, NaN stopping.
      trainer = guard.GuardedTrainer(config, dataset, out=out, hooks=hooks,
                                     strategy=strategy, worker=worker)
      trainer.run()  # SIGINT/SIGTERM: saves, then exits 130/143 itself.
  except (KeyboardInterrupt, cli.Terminated) as error:
    # Ctrl-C or SIGTERM before training (a download's .part file is gone
    # by now), or a second one during it.
    print(f"error: interrupted; {config.model_dir} keeps its newest "
          "checkpoint, if any, so run the same command again to continue.",
          file=sys.stderr)
    sys.exit(143 if isinstance(error, cli.Terminated) else 130)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
