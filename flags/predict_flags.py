"""Flags of `python -m tf_raw.tools.predict` (it reuses --model_dir from train_flags)."""

from absl import flags

from flags import common_flags
from flags import train_flags  # pylint: disable=unused-import  (--model_dir)

SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None,
    "A SavedModel written by tf_raw.tools.export; used instead of --model_dir's "
    "latest checkpoint when given.")
IMAGES = flags.DEFINE_multi_string(
    "image", None,
    "An image file to classify (JPEG, PNG, GIF, BMP; any size, resized to "
    "32x32), at least one; repeat the flag for more images")
TOP_K = flags.DEFINE_integer(
    "top_k", 3, "How many of the most likely classes to print per image.",
    lower_bound=1)
# A SavedModel holds a TensorFlow checkpoint (variables/): same path rules.
common_flags.register_checkpoint_folder("saved_model")
