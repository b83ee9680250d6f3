"""A grid of small images with a caption under each, drawn with numpy only.

    grid = labelled_grid(images_uint8, ["frog", "truck", ...], columns=3)
    tf.io.write_file("samples.png", tf.io.encode_png(grid))

No plotting library: each 32x32 image is enlarged by pixel repetition and its
caption is drawn, in capitals, with the tiny 5x7 bitmap font below (the
classic character-LCD glyphs). Used by `python -m tf_raw.explore` and by the
TensorBoard "samples" image.
"""

import numpy as np

# Each glyph: 7 rows, top to bottom; bit 4 of each row is the leftmost pixel.
_FONT_5X7 = {
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    " ": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    "_": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F),
    "-": (0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00),
    ".": (0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C),
    ":": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00),
    "/": (0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04),
}
GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7
_GLYPH_ADVANCE = GLYPH_WIDTH + 1  # One blank column between letters.

IMAGE_SCALE = 4  # Each 32x32 image becomes 128x128: big enough to see.
TEXT_SCALE = 2  # Each font pixel becomes 2x2: 10x14 letters, 10 per caption.
_PADDING = 3  # Pixels above and below a caption.
_GAP = 4  # Pixels between tiles and around the grid.
_BACKGROUND = 40  # Dark grey between tiles.
_TEXT, _STRIP = 255, 0  # White letters on a black strip.


def glyph(character):
  """bool [7, 5] pixels of `character` (letters in capitals; unknown: '?')."""
  rows = _FONT_5X7.get(character.upper(), _FONT_5X7["?"])
  bits = 1 << np.arange(GLYPH_WIDTH - 1, -1, -1)  # [16, 8, 4, 2, 1]
  return (np.array(rows)[:, None] & bits) > 0


def render_text(text, max_width, scale=TEXT_SCALE):
  """Draws `text` as bool [7 * scale, W] pixels, W <= max_width.

  Characters that do not fit are dropped from the end and the last one shown
  becomes '.', so a long name stays recognisable.
  """
  fits = max(1, (max_width // scale + 1) // _GLYPH_ADVANCE)
  if len(text) > fits:
    text = text[:fits - 1] + "."
  canvas = np.zeros((GLYPH_HEIGHT, _GLYPH_ADVANCE * len(text) - 1), bool)
  for index, character in enumerate(text):
    left = index * _GLYPH_ADVANCE
    canvas[:, left:left + GLYPH_WIDTH] = glyph(character)
  return canvas.repeat(scale, axis=0).repeat(scale, axis=1)


def labelled_grid(images_uint8, captions, columns):
  """Lays images out in rows of `columns`, each with its caption below.

  Args:
    images_uint8: uint8 [N, H, W, 3].
    captions: N strings (e.g. class names).
    columns: tiles per row; rows = ceil(N / columns).

  Returns:
    uint8 [rows * (H*4 + caption) + gaps, columns * W*4 + gaps, 3]: tile (r, c)
    holds image r * columns + c, enlarged 4x by repeating pixels.
  """
  images_uint8 = np.asarray(images_uint8)
  assert images_uint8.dtype == np.uint8 and images_uint8.ndim == 4
  assert len(captions) == len(images_uint8)
  count, height, width, _ = images_uint8.shape
  rows = -(-count // columns)
  tile_height, tile_width = height * IMAGE_SCALE, width * IMAGE_SCALE
  strip_height = GLYPH_HEIGHT * TEXT_SCALE + 2 * _PADDING
  cell_height = tile_height + strip_height + _GAP
  cell_width = tile_width + _GAP
  grid = np.full((_GAP + rows * cell_height, _GAP + columns * cell_width, 3),
                 _BACKGROUND, np.uint8)
  for index, (image, caption) in enumerate(zip(images_uint8, captions)):
    top = _GAP + (index // columns) * cell_height
    left = _GAP + (index % columns) * cell_width
    enlarged = image.repeat(IMAGE_SCALE, axis=0).repeat(IMAGE_SCALE, axis=1)
    grid[top:top + tile_height, left:left + tile_width] = enlarged
    strip = grid[top + tile_height:top + tile_height + strip_height,
                 left:left + tile_width]
    strip[...] = _STRIP
    text = render_text(caption, tile_width)
    text_left = (tile_width - text.shape[1]) // 2  # Centred.
    strip[_PADDING:_PADDING + text.shape[0],
          text_left:text_left + text.shape[1]][text] = _TEXT
  return grid


def tile_origin(index, columns, image_size=32):
  """(top, left) pixel of tile `index` in `labelled_grid`'s output."""
  tile = image_size * IMAGE_SCALE
  cell_height = tile + GLYPH_HEIGHT * TEXT_SCALE + 2 * _PADDING + _GAP
  return (_GAP + (index // columns) * cell_height,
          _GAP + (index % columns) * (tile + _GAP))
