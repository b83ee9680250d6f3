r"""Looks at the data before training, as the notebook did: `python -m tf_raw.tools.explore`.

    python -m tf_raw.tools.explore                              # CIFAR-10
    python -m tf_raw.tools.explore --data_dir=my_images --output=my_samples.png

Prints the shapes, the train and test counts (per class too), the first
training image's pixel values and its label with the class name, and writes
a 3x3 grid of the first training images, each captioned with its class name,
as a PNG (`tf.io.encode_png`; no plotting library). Takes the same data flags
as `python -m tf_raw.train`, so it shows exactly what training would see.
"""

import os

from absl import app
from absl import flags

from flags import explore_flags  # pylint: disable=g-bad-import-order
from flags import train_flags
from flags import cli

GRID_SIZE = 3  # A 3x3 grid, as the notebook plotted.

flags.adopt_module_key_flags(explore_flags)
for _name in explore_flags.DATA_FLAG_NAMES:
  flags.declare_key_flag(_name)


def summary_lines(dataset):
  """The notebook-style description of a `data.Dataset`, as lines of text."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  names = dataset.class_names
  lines = []
  for split in ("train", "test"):
    images = getattr(dataset, f"{split}_images")
    labels = getattr(dataset, f"{split}_labels")
    lines.append(f"{split + ':':6} images {images.shape} {images.dtype}, "
                 f"labels {labels.shape} {labels.dtype}")
  lines.append(f"{len(names)} classes: " + ", ".join(
      f"{label} {name}" for label, name in enumerate(names)))
  for split in ("train", "test"):
    counts = np.bincount(getattr(dataset, f"{split}_labels"),
                         minlength=len(names))
    lines.append(f"{split} images per class: " + ", ".join(
        f"{name} {count}" for name, count in zip(names, counts)))
  first_image, first_label = dataset.train_images[0], dataset.train_labels[0]
  lines.append(f"first training image, uint8 {list(first_image.shape)} "
               "(the network sees these values / 255):")
  with np.printoptions(threshold=60, edgeitems=2):
    lines += str(first_image).splitlines()
  one_hot = np.eye(len(names), dtype=np.int32)[first_label]
  lines.append(f"its label: {first_label} = {names[first_label]} "
               f"(one-hot, as the notebook fed it: {one_hot})")
  return lines


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  config = train_flags.to_config()
  output, split = explore_flags.OUTPUT.value, explore_flags.SPLIT.value
  # Heavy imports after flag parsing, so --help and usage errors are instant.
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw import sources  # pylint: disable=g-import-not-at-top
  from tf_raw.tools import image_grid  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import run_dir  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  with cli.user_errors(data.DataError, OSError):
    dataset = sources.load(config)
    for line in summary_lines(dataset):
      print(line)
    images = getattr(dataset, f"{split}_images")[:GRID_SIZE * GRID_SIZE]
    labels = getattr(dataset, f"{split}_labels")[:GRID_SIZE * GRID_SIZE]
    captions = [dataset.class_names[label] for label in labels]
    grid = image_grid.labelled_grid(images, captions, columns=GRID_SIZE)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    png = tf.io.encode_png(grid).numpy()
    run_dir.write_atomically(output, png)
  print(f"Wrote {output}: the first {len(captions)} {split} images, "
        f"{grid.shape[1]}x{grid.shape[0]} pixels, laid out as:")
  print(image_grid.caption_rows(captions, GRID_SIZE))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
