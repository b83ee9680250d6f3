"""Data augmentation as graph ops: a random crop and a random mirror per image.

Public pieces:

* `crop_flip(images_uint8, seed)`: pads each image by `PAD` pixels of zeros,
  takes a random 32x32 window of it and mirrors it left-right with
  probability 1/2. Each image of the batch gets its own draw.
* `augment_seed(run_seed, step)`: the seed tensor `crop_flip` takes, for a
  training step (the run's seed and the global step, folded with a stream
  constant of its own).
* `draw_crop_flip(batch_size, seed)`: the random numbers behind `crop_flip`
  (offsets and flip bits), so a test can recompute its output by hand.

This is what the TF1 CIFAR-10 tutorial did in its input pipeline
(`tf.random_crop` and `tf.image.random_flip_left_right`, one image at a time,
stateful). Here it runs inside the traced train step on a whole batch, and it
is *stateless*: the draws are a pure function of the seed tensor, like the
dropout masks of `tf_raw/model.py`, so a run restored from a checkpoint crops
and mirrors exactly as an uninterrupted run would have. All draws have one
row per image of the batch ([B] offsets, [B] flip bits), so a replica that
is handed some rows of the global batch could take the same rows of the draws.

How one image is cropped and mirrored without a per-image loop: the output
pixel (i, j) of image b is the padded input pixel

    (row, col) = (dy[b] + i, dx[b] + j)            kept as is, or
    (row, col) = (dy[b] + i, dx[b] + 31 - j)       mirrored,

so the whole batch is two `tf.gather`s with per-image index grids: one picks
32 of the 40 padded rows, the other 32 of the 40 padded columns (in reverse
order for the mirrored images). Integer indices: the result is made of the
input's own pixels, exactly, and zeros where the window reaches the padding.
"""

import tensorflow as tf

PAD = 4  # Pixels of zeros added on each side before cropping (TF1 tutorial: 4).
# Folded into (run seed, step) so augmentation draws its own random numbers,
# not those of a dropout mask (model.py folds 0..4 into the same pair).
AUGMENT_STREAM = 1000
_OFFSET_STREAM, _FLIP_STREAM = 0, 1  # Sub-streams of AUGMENT_STREAM.

# The values of `--augment`.
NONE = "none"
CROP_FLIP = "crop_flip"
MODES = (NONE, CROP_FLIP)


def augment_seed(run_seed, step):
  """The seed of a training step's augmentation: int64 [2].

  Args:
    run_seed: int, the run's `--seed`.
    step: int64 scalar tensor, the global step (0 for the first step).
  """
  pair = tf.stack([tf.constant(run_seed, tf.int64),
                   tf.cast(step, tf.int64)])                  # (2,)
  return tf.random.experimental.stateless_fold_in(pair, AUGMENT_STREAM)


def draw_crop_flip(batch_size, seed):
  """The random numbers of `crop_flip`: one crop offset pair and flip bit per image.

  Args:
    batch_size: B, an int32 scalar (tensor or int).
    seed: int32/int64 [2], e.g. `augment_seed(run_seed, step)`.

  Returns:
    (offsets, flips): int32 [B, 2], each (dy, dx) in 0..2 * PAD, the top-left
    corner of the 32x32 window in the padded image; and bool [B], True where
    the image is mirrored left-right.
  """
  offsets = tf.random.stateless_uniform(
      [batch_size, 2], tf.random.experimental.stateless_fold_in(
          seed, _OFFSET_STREAM),
      minval=0, maxval=2 * PAD + 1, dtype=tf.int32)           # (B, 2)
  flip_bits = tf.random.stateless_uniform(
      [batch_size], tf.random.experimental.stateless_fold_in(
          seed, _FLIP_STREAM),
      minval=0, maxval=2, dtype=tf.int32)                     # (B,)
  return offsets, tf.equal(flip_bits, 1)


def crop_flip(images_uint8, seed, rows=None):
  """Random 32x32 crops of the zero-padded images, each mirrored half the time.

  Args:
    images_uint8: uint8 [B, H, W, C] (CIFAR: [B, 32, 32, 3]).
    seed: int32/int64 [2]; the same seed gives the same crops and mirrors.
    rows: None, or (first, global_batch) when the images are rows first..
      of a larger batch split between replicas: they get those rows' draws
      (as `distribute.draw_rows` does for the dropout masks).

  Returns:
    uint8 [B, H, W, C]: every pixel is an input pixel or a padding zero.
  """
  with tf.name_scope("crop_flip"):
    shape = tf.shape(images_uint8)
    batch_size, height, width = shape[0], shape[1], shape[2]
    if rows is None:
      offsets, flips = draw_crop_flip(batch_size, seed)      # (B, 2), (B,)
    else:  # A replica's rows of the whole batch's draws.
      first, global_batch = rows
      offsets, flips = draw_crop_flip(global_batch, seed)
      offsets = offsets[first:first + batch_size]
      flips = flips[first:first + batch_size]
    padded = tf.pad(images_uint8,
                    [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])  # (B, H+8, W+8, C)

    # Rows: image b keeps padded rows dy[b] .. dy[b] + H - 1.
    rows = offsets[:, :1] + tf.range(height)[tf.newaxis, :]   # (B, H)
    # Columns: dx[b] .. dx[b] + W - 1, or the same columns right to left.
    forward = tf.range(width)[tf.newaxis, :]                  # (1, W)
    columns = offsets[:, 1:] + tf.where(
        flips[:, tf.newaxis], width - 1 - forward, forward)   # (B, W)

    # batch_dims=1: image b is indexed by its own row of `rows` / `columns`.
    cropped_rows = tf.gather(padded, rows, axis=1,
                             batch_dims=1)                    # (B, H, W+8, C)
    return tf.gather(cropped_rows, columns, axis=2,
                     batch_dims=1)                            # (B, H, W, C)
