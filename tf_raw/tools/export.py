r"""Exports a trained run as a SavedModel: `python -m tf_raw.tools.export`.

    python -m tf_raw.tools.export --model_dir=runs/cifar10 \
        --export_dir=exports/cifar10/1
    saved_model_cli show --dir=exports/cifar10/1 --all

Reads the latest checkpoint in --model_dir and writes a SavedModel whose
`serving_default` signature takes uint8 images [None, 32, 32, 3] and returns
{"class_ids", "probabilities"}, preprocessing included (see
`tf_raw/serving.py`). The folder appears only when complete.
"""

from absl import app
from absl import flags

from flags import export_flags  # pylint: disable=g-bad-import-order
from flags import train_flags
from flags import cli
from flags import common_flags

flags.adopt_module_key_flags(export_flags)
flags.declare_key_flag("model_dir")


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  # "~/x" is $HOME/x: user paths are expanded once, here.
  model_dir = common_flags.expand_path(train_flags.MODEL_DIR.value)
  export_dir = common_flags.expand_path(export_flags.EXPORT_DIR.value)
  # Checked here, not with mark_flag_as_required: a required flag would fail
  # every other program that shares the flag registry (e.g. in tests).
  if not export_dir:
    cli.usage_error(argv, "--export_dir is required (a new folder for the "
                    "SavedModel)")
  # Heavy imports after flag parsing, so --help and usage errors are instant.
  from tf_raw.tools import serving  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from absl import logging  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")  # No "assets written" INFO lines,
  logging.set_verbosity(logging.WARNING)  # from either logger.
  with cli.user_errors(serving.ServingError):
    classifier = serving.export_saved_model(model_dir, export_dir)
  names = [name.decode() for name in classifier.class_names.numpy()]
  print(f"Wrote {export_dir} from {classifier.checkpoint_prefix}: signature "
        f"'{serving.SIGNATURE_KEY}', uint8 "
        f"images [None, 32, 32, 3] -> class_ids, probabilities over "
        f"{len(names)} classes ({', '.join(names)}).")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
