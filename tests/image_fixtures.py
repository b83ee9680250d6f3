"""Test helper: tiny folders of your own images, train/<class>/<i>.png.

    written = write_image_folder(root, per_class=4, with_test=True)

Each image is random uint8 pixels written losslessly with tf.io.encode_png, so
`written[image.tobytes()]` says which split and label a loaded image came from.
"""

import os

import numpy as np
import tensorflow as tf

CLASSES = ("cat", "dog", "frog")


def write_image(path, image_uint8, encoder=tf.io.encode_png):
  """Writes uint8 [H, W, C] as an image file (PNG by default)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tf.io.write_file(str(path), encoder(image_uint8))


def write_image_folder(root, per_class=4, with_test=True, seed=0):
  """Writes root/train/<class>/<i>.png (and 2 per class in root/test/).

  Returns:
    {image bytes: (split, label)} for every image written.
  """
  rng = np.random.default_rng(seed)
  written = {}
  for split, count in (("train", per_class), ("test", 2 if with_test else 0)):
    for label, name in enumerate(CLASSES):
      for index in range(count):
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        write_image(os.path.join(str(root), split, name, f"{index}.png"), image)
        written[image.tobytes()] = (split, label)
  return written


def grid_tile_origin(index, columns, image_size=32):
  """(top, left) of tile `index` in `image_grid.labelled_grid`'s output.

  Computed here from the layout's constants (4x tiles, 4-pixel gaps, a
  caption strip only when Pillow is installed), not by the module itself.
  """
  from tf_raw.tools import image_grid  # pylint: disable=g-import-not-at-top
  caption = image_grid.CAPTION_HEIGHT if image_grid._pillow_draw() else 0
  tile = image_size * 4
  return (4 + (index // columns) * (tile + caption + 4),
          4 + (index % columns) * (tile + 4))
