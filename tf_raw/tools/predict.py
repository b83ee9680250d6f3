r"""Classifies image files: `python -m tf_raw.tools.predict --image=cat.jpg`.

    python -m tf_raw.tools.predict --model_dir=runs/cifar10 --image=a.png --image=b.jpg
    python -m tf_raw.tools.predict --saved_model=exports/cifar10/1 --image=a.png

Each file is decoded with `tf.io.decode_image` (JPEG, PNG, GIF, BMP), resized
to 32x32 as in training on your own images, and the --top_k most likely
classes are printed with their probabilities. A file that cannot be read or
decoded gets one error line on stderr; the others are still classified, and
the exit status is 1.
"""

import sys

from absl import app
from absl import flags

from flags import predict_flags  # pylint: disable=g-bad-import-order
from flags import train_flags
from flags import cli
from flags import common_flags

flags.adopt_module_key_flags(predict_flags)
flags.declare_key_flag("model_dir")


def _read_image(path):
  """uint8 [32, 32, 3] from an image file, or an error sentence (a str)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_raw.sources import image_folder  # pylint: disable=g-import-not-at-top
  try:
    with open(path, "rb") as f:
      contents = f.read()
  except OSError as error:
    return f"cannot read {path}: {error.strerror or error}."
  try:
    return image_folder.decode_to_input_size(tf.constant(contents)).numpy()
  except tf.errors.InvalidArgumentError:
    return (f"{path} is not an image TensorFlow can decode (JPEG, PNG, GIF "
            "or BMP); skipped.")


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  saved_model = predict_flags.SAVED_MODEL.value
  if saved_model and flags.FLAGS["model_dir"].present:
    cli.usage_error(argv, "give --model_dir or --saved_model, not both")
  # "~/x" is $HOME/x: user paths are expanded once, here.
  model_dir = common_flags.expand_path(train_flags.MODEL_DIR.value)
  saved_model = common_flags.expand_path(saved_model)
  paths = [common_flags.expand_path(path)
           for path in predict_flags.IMAGES.value or ()]
  top_k = predict_flags.TOP_K.value
  if not paths:
    cli.usage_error(argv, "give at least one --image=FILE to classify")
  # Heavy imports after flag parsing, so --help and usage errors are instant.
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_raw.tools import serving  # pylint: disable=g-import-not-at-top

  with cli.user_errors(serving.ServingError):
    if saved_model:
      classify, class_names = serving.load_saved_model(saved_model)
    else:
      classifier = serving.restore_classifier(model_dir)
      classify = classifier.serve
      class_names = tuple(name.decode()
                          for name in classifier.class_names.numpy())

  images, good_paths, failures = [], [], 0
  for path in paths:
    image = _read_image(path)
    if isinstance(image, str):
      print(f"error: {image}", file=sys.stderr)
      failures += 1
    else:
      images.append(image)
      good_paths.append(path)
  if images:
    probabilities = classify(np.stack(images))["probabilities"].numpy()
    for path, row in zip(good_paths, probabilities):
      best = np.argsort(-row, kind="stable")[:top_k]
      shown = path if path.isprintable() else repr(path)  # Not UTF-8.
      print(f"{shown}: " + ", ".join(
          f"{class_names[label]} {row[label]:.3f}" for label in best))
  if failures:
    print(f"error: {failures} of {len(paths)} images could not be classified.",
          file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
