"""The notebook's convolutional network as a `tf.Module` of five plain variables.

TF1 original (one function of placeholders):

    l1 = dropout(max_pool(relu(conv2d(X, W_C1))), p_keep_conv)
    l2 = dropout(max_pool(relu(conv2d(l1, W_C2))), p_keep_conv)
    l3 = dropout(max_pool(relu(conv2d(l2, W_C3))), p_keep_conv)
    l3 = dropout(reshape(l3, [-1, 2048]), p_keep_conv)
    l4 = dropout(relu(matmul(l3, W_FC)), p_keep_hidden)
    logits = matmul(l4, W_O)

Here the same ops are called in the same order from `ConvNet.__call__`, with
the notebook's keep probabilities. One thing differs, on purpose:

* Dropout is *stateless*: its random mask is a pure function of a seed tensor
  (here: the run's seed and the global step). A run restored from a checkpoint
  therefore draws exactly the masks an uninterrupted run would have drawn.
  The mask is that of `tf.nn.experimental.stateless_dropout(x, rate, seed)`
  (TF2's dropout takes `rate`, the fraction DROPPED, where TF1 took
  `keep_prob`: rate = 1 - keep_prob), applied as one multiply (faster).

Variables keep the notebook's names in lowercase (`w_c1` ... `w_o`).

Mixed precision (`--precision=mixed_bfloat16`, see `COMPUTE_DTYPES`): the
variables stay float32; `__call__` casts the images and each weight to
bfloat16 where it is used, so the convolutions, matmuls, ReLUs and pools run
in bfloat16 (about 1.4x faster on a CPU with AVX512_BF16 or AMX, and on GPUs
and TPUs), and casts the logits back to float32 for the loss. The gradient of
a cast is a cast back, so the gradients arrive as float32 for the float32
optimizer. With float32, every cast is a no-op: `tf.cast` returns a tensor
that already has the dtype, so the graph is exactly the float32 one.
"""

import tensorflow as tf

from tf_raw import distribute

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
HIDDEN_UNITS = 625
FLAT_FEATURES = 4 * 4 * 128  # Three 2x2 pools take 32x32 to 4x4; 128 channels.

# Weight shapes, in the notebook's order. Conv kernels are HWIO:
# [filter_height, filter_width, in_channels, out_channels].
WEIGHT_SHAPES = {
    "w_c1": (3, 3, 3, 32),  # The notebook wrote [3, 3, 3, 32, 32] (5-D typo).
    "w_c2": (3, 3, 32, 64),
    "w_c3": (3, 3, 64, 128),
    "w_fc": (FLAT_FEATURES, HIDDEN_UNITS),
    "w_o": (HIDDEN_UNITS, NUM_CLASSES),
}

# --precision -> the dtype the layers compute in. bfloat16 keeps float32's
# exponent range (8 bits), so unlike float16 it needs no loss scaling; it
# keeps 8 bits of mantissa, hence float32 master weights and optimizer.
COMPUTE_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}

# Each dropout op gets its own stream: seed (run seed, step) folded with this.
_DROPOUT_STREAMS = ("conv1", "conv2", "conv3", "flat", "hidden")


def scale_images(images_uint8):
  """uint8 [B, 32, 32, 3] in 0..255 -> float32 in [0, 1], as the notebook did."""
  return tf.cast(images_uint8, tf.float32) / 255.0


class ConvNet(tf.Module):
  """Three conv blocks and two dense layers, no biases: 1,379,274 parameters.

  Attributes:
    w_c1, w_c2, w_c3: conv kernels, HWIO (see `WEIGHT_SHAPES`).
    w_fc: [2048, 625] dense weight.
    w_o: [625, 10] output weight (its matmul gives the logits).
  """

  def __init__(self, init_stddev=0.01, seed=None, name="conv_net",
               num_classes=NUM_CLASSES, precision="float32"):
    """Creates the five weights from `tf.random.normal(stddev=init_stddev)`.

    Args:
      init_stddev: standard deviation of every weight's normal initialiser
        (the notebook's `tf.random_normal(shape, stddev=0.01)`).
      seed: int or None. With an int, the initial weights are a pure function
        of it (stateless normal, one stream per weight).
      name: the module's name.
      num_classes: outputs of the last layer; 10 for CIFAR-10, the number of
        class folders for your own images (w_o is [625, num_classes]).
      precision: a key of `COMPUTE_DTYPES`: "float32", or "mixed_bfloat16"
        (float32 weights, bfloat16 layers).
    """
    super().__init__(name=name)
    self.num_classes = num_classes
    self.compute_dtype = COMPUTE_DTYPES[precision]
    shapes = dict(WEIGHT_SHAPES, w_o=(HIDDEN_UNITS, num_classes))
    with self.name_scope:
      for index, (weight_name, shape) in enumerate(shapes.items()):
        if seed is None:
          initial = tf.random.normal(shape, stddev=init_stddev)
        else:
          initial = tf.random.stateless_normal(
              shape, seed=[seed, index], stddev=init_stddev)
        setattr(self, weight_name, tf.Variable(initial, name=weight_name))

  @property
  def weights(self):
    """The five variables in the notebook's order."""
    return [getattr(self, name) for name in WEIGHT_SHAPES]

  def __call__(self, images, keep_prob_conv=1.0, keep_prob_hidden=1.0,
               dropout_seed=None, dropout_rows=None):
    """Computes logits.

    Args:
      images: float32 [B, 32, 32, 3], values in [0, 1].
      keep_prob_conv: keep probability of the four conv-side dropouts
        (Python float; 1.0 skips them, as at test time).
      keep_prob_hidden: keep probability of the hidden-layer dropout.
      dropout_seed: int32/int64 tensor of shape [2], required when any keep
        probability is below 1. The same seed gives the same masks.

    Returns:
      float32 [B, num_classes] logits (unnormalised; softmax is in the loss),
      whatever the precision.
    """
    def weight(variable):
      # Mixed precision: the float32 variable, read as a bfloat16 copy for
      # this layer. float32: the variable itself (tf.cast adds no op).
      return tf.cast(variable, self.compute_dtype)

    def dropout(x, keep_prob, stream):
      if keep_prob >= 1.0:
        return x
      # TF1: tf.nn.dropout(x, keep_prob). Kept values are scaled by
      # 1 / keep_prob, dropped ones become 0.
      op_seed = tf.random.experimental.stateless_fold_in(
          dropout_seed, _DROPOUT_STREAMS.index(stream))
      with tf.name_scope(f"{stream}_keep_mask"):
        # The very mask of tf.nn.experimental.stateless_dropout(x, rate=1 -
        # keep_prob, seed=op_seed): the same uniform draw, the same test
        # (uniform >= rate), as a {0, 1/keep_prob} tensor.
        uniform = distribute.draw_rows(
            lambda shape: tf.random.stateless_uniform(shape, seed=op_seed),
            tf.shape(x), dropout_rows)
        mask = tf.where(uniform >= 1.0 - keep_prob, 1.0 / keep_prob, 0.0)
        # The same float32 draw in every precision; 1/keep_prob as bfloat16
        # is rounded (1.25 and 2.0, the defaults, are exact).
        mask = tf.cast(mask, x.dtype)
      # Applied as one multiply, whose gradient is one multiply too;
      # stateless_dropout's multiply + select costs two passes each way.
      return tf.math.multiply(x, mask, name="dropout")

    def conv_block(x, kernel, stream):
      x = tf.nn.relu(tf.nn.conv2d(x, weight(kernel), strides=1,
                                  padding="SAME"))
      x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
      return dropout(x, keep_prob_conv, stream)

    x = tf.cast(images, self.compute_dtype)                    # (B, 32, 32, 3)
    x = conv_block(x, self.w_c1, "conv1")                      # (B, 16, 16, 32)
    x = conv_block(x, self.w_c2, "conv2")                      # (B, 8, 8, 64)
    x = conv_block(x, self.w_c3, "conv3")                      # (B, 4, 4, 128)
    x = tf.reshape(x, [-1, FLAT_FEATURES])                     # (B, 2048)
    x = dropout(x, keep_prob_conv, "flat")                     # (B, 2048)
    x = tf.nn.relu(tf.matmul(x, weight(self.w_fc)))            # (B, 625)
    x = dropout(x, keep_prob_hidden, "hidden")                 # (B, 625)
    logits = tf.matmul(x, weight(self.w_o))                    # (B, 10)
    # The softmax and the loss in float32: a sum over the batch and a log
    # of a sum of exps are where bfloat16's 3 significant digits would show.
    return tf.cast(logits, tf.float32)                         # (B, 10)

