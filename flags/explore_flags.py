"""Flags of `python -m tf_raw.tools.explore` (it reuses the data flags of train_flags)."""

from absl import flags

from flags import train_flags  # pylint: disable=unused-import  (data flags)

OUTPUT = flags.DEFINE_string(
    "output", "runs/samples.png",
    "Where to write the 3x3 grid of labelled training images (PNG).")
SPLIT = flags.DEFINE_enum(
    "split", "train", ["train", "test"],
    "Which split's first images to show in the grid.")

# The train_flags that choose and shape the data; explore's --helpshort shows them.
DATA_FLAG_NAMES = ("dataset", "data_dir", "data_url", "cache_dir",
                   "data_layout", "synthetic_train_size", "synthetic_test_size",
                   "validation_split", "seed")
