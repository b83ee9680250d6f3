"""A grid of small images, captioned when Pillow is installed.

    grid = labelled_grid(images_uint8, ["frog", "truck", ...], columns=3)
    tf.io.write_file("samples.png", tf.io.encode_png(grid))
    print(caption_rows(["frog", "truck", ...], columns=3))   # the same layout

Each 32x32 image is enlarged 4x by pixel repetition. With Pillow
(`pip install pillow`, an optional extra) each tile gets its caption drawn
under it in Pillow's built-in font; without it the grid has no text, and the
programs print `caption_rows` beside it instead. Used by
`python -m tf_raw.tools.explore` and by the TensorBoard "samples" image.
"""

import numpy as np

IMAGE_SCALE = 4  # Each 32x32 image becomes 128x128: big enough to see.
CAPTION_HEIGHT = 16  # Pixels under each tile for its caption (with Pillow).
_GAP = 4  # Pixels between tiles and around the grid.
_BACKGROUND = 40  # Dark grey between tiles.
_TEXT = (255, 255, 255)


def _pillow_draw():
  """PIL.ImageDraw, or None when Pillow is not installed."""
  try:
    from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return Image, ImageDraw


def labelled_grid(images_uint8, captions, columns):
  """Lays images out in rows of `columns`, each with its caption below.

  Args:
    images_uint8: uint8 [N, H, W, 3].
    captions: N strings (e.g. class names).
    columns: tiles per row; rows = ceil(N / columns).

  Returns:
    uint8 [rows * (H*4 + caption + gap) + gap, columns * (W*4 + gap) + gap, 3]:
    tile (r, c) holds image r * columns + c, enlarged 4x by repeating pixels;
    caption is CAPTION_HEIGHT with Pillow installed, else 0.
  """
  images_uint8 = np.asarray(images_uint8)
  assert images_uint8.dtype == np.uint8 and images_uint8.ndim == 4
  assert len(captions) == len(images_uint8)
  pillow = _pillow_draw()
  count, height, width, _ = images_uint8.shape
  rows = -(-count // columns)
  tile_height, tile_width = height * IMAGE_SCALE, width * IMAGE_SCALE
  cell_height = tile_height + (CAPTION_HEIGHT if pillow else 0) + _GAP
  cell_width = tile_width + _GAP
  grid = np.full((_GAP + rows * cell_height, _GAP + columns * cell_width, 3),
                 _BACKGROUND, np.uint8)
  for index, image in enumerate(images_uint8):
    top, left = tile_origin(index, columns, cell_height, cell_width)
    enlarged = image.repeat(IMAGE_SCALE, axis=0).repeat(IMAGE_SCALE, axis=1)
    grid[top:top + tile_height, left:left + tile_width] = enlarged
  if pillow:
    image_module, draw_module = pillow
    picture = image_module.fromarray(grid)
    draw = draw_module.Draw(picture)
    for index, caption in enumerate(captions):
      top, left = tile_origin(index, columns, cell_height, cell_width)
      draw.text((left + tile_width // 2, top + tile_height + 2), caption,
                fill=_TEXT, anchor="mt")  # Centred under the tile.
    grid = np.asarray(picture, np.uint8)
  return grid


def tile_origin(index, columns, cell_height, cell_width):
  """(top, left) pixel of tile `index` in a grid of such cells."""
  return (_GAP + (index // columns) * cell_height,
          _GAP + (index % columns) * cell_width)


def caption_rows(captions, columns):
  """The captions laid out as the grid's rows, one line of text per row."""
  return "\n".join(
      "  " + "".join(f"{caption:14}"
                     for caption in captions[row:row + columns]).rstrip()
      for row in range(0, len(captions), columns))
