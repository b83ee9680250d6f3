"""Flags of `python -m tf_raw.compare` (the TF1 graph beside the TF2 code).

Data flags mean what they mean for `python -m tf_raw.train`; defaults come from
`tf_raw.config.TrainConfig` except where comparing needs otherwise (synthetic
data, dropout off). `to_config()` returns a frozen `config.CompareConfig`.
"""

import os

from absl import flags

from tf_raw import config as config_lib

_D = config_lib.TrainConfig()  # The defaults.

STEPS = flags.DEFINE_integer(
    "steps", 50, "Training steps to run both implementations for.",
    lower_bound=1)
TOLERANCE = flags.DEFINE_float(
    "tolerance", 1e-6,
    "Largest absolute difference allowed between the two losses at any step, "
    "and between any two weights or RMSProp slots after it; above it the "
    "program exits 1. 0 demands bit-identical results.", lower_bound=0.0)
TRAP = flags.DEFINE_enum(
    "trap", "none", ["none", "keras_rmsprop"],
    "Put a porting mistake into the TF2 side, to see what it does. "
    "keras_rmsprop: start RMSProp's mean square at zeros with epsilon 1e-7, "
    "as Keras's RMSprop does, instead of TF1's ones and 1e-10.")

# The data, as for tf_raw.train.
DATASET = flags.DEFINE_enum(
    "dataset", "synthetic", ["cifar10", "synthetic"],
    "Images to train on: synthetic (default here, no download) or cifar10 "
    "(found in --data_dir or --cache_dir, else downloaded).")
DATA_DIR = flags.DEFINE_string(
    "data_dir", _D.data_dir,
    "Folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz.")
DATA_URL = flags.DEFINE_string(
    "data_url", _D.data_url,
    "Where to download cifar-10-python.tar.gz from when not found locally.")
CACHE_DIR = flags.DEFINE_string(
    "cache_dir", _D.cache_dir,
    "Folder where downloaded and extracted CIFAR-10 is kept between runs.")
DATA_LAYOUT = flags.DEFINE_enum(
    "data_layout", _D.data_layout, ["nhwc", "legacy_reshape"],
    "nhwc (correct) or legacy_reshape (the notebook's bug); see tf_raw.train.")
SYNTHETIC_TRAIN_SIZE = flags.DEFINE_integer(
    "synthetic_train_size", _D.synthetic_train_size,
    "Training images in --dataset=synthetic.", lower_bound=1)
SYNTHETIC_TEST_SIZE = flags.DEFINE_integer(
    "synthetic_test_size", _D.synthetic_test_size,
    "Test images in --dataset=synthetic (their predictions are compared at "
    "the end).", lower_bound=1)

# The recipe, as for tf_raw.train.
BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", _D.batch_size, "Images per training step. Notebook: 128.",
    lower_bound=1)
LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", _D.learning_rate,
    "RMSProp step size for both. Notebook: 0.001.", lower_bound=0.0)
SEED = flags.DEFINE_integer(
    "seed", _D.seed,
    "Seed of the shared initial weights and of the data order (and of each "
    "side's dropout).", lower_bound=0)
KEEP_PROB_CONV = flags.DEFINE_float(
    "keep_prob_conv", 1.0,
    "Dropout keep probability after each conv block, in (0, 1]. Default 1 "
    "(off): TF1's stateful and TF2's stateless dropout draw different masks, "
    "so with dropout on the two runs are expected to diverge. Notebook: 0.8.")
KEEP_PROB_HIDDEN = flags.DEFINE_float(
    "keep_prob_hidden", 1.0,
    "Dropout keep probability after the hidden layer, in (0, 1]. Default 1 "
    "(off). Notebook: 0.5.")

flags.register_validator(
    "keep_prob_conv", lambda v: 0.0 < v <= 1.0,
    "--keep_prob_conv must be in (0, 1]: it is a keep probability.")
flags.register_validator(
    "keep_prob_hidden", lambda v: 0.0 < v <= 1.0,
    "--keep_prob_hidden must be in (0, 1]: it is a keep probability.")
flags.register_validator(
    "data_dir", lambda v: v is None or os.path.exists(os.path.expanduser(v)),
    "--data_dir must be an existing folder holding cifar-10-batches-py/ or "
    "cifar-10-python.tar.gz (or that archive itself).")


def to_config():
  """Returns the parsed flags as a frozen `config.CompareConfig`."""
  train = config_lib.TrainConfig(
      dataset=DATASET.value, data_dir=DATA_DIR.value, data_url=DATA_URL.value,
      cache_dir=CACHE_DIR.value, data_layout=DATA_LAYOUT.value,
      synthetic_train_size=SYNTHETIC_TRAIN_SIZE.value,
      synthetic_test_size=SYNTHETIC_TEST_SIZE.value,
      batch_size=BATCH_SIZE.value, learning_rate=LEARNING_RATE.value,
      seed=SEED.value, keep_prob_conv=KEEP_PROB_CONV.value,
      keep_prob_hidden=KEEP_PROB_HIDDEN.value)
  return config_lib.CompareConfig(train=train, steps=STEPS.value,
                                  tolerance=TOLERANCE.value, trap=TRAP.value)
