"""Flags of `python -m tf_raw.tools.export` (it reuses --model_dir from train_flags)."""

from absl import flags

from flags import common_flags
from flags import train_flags  # pylint: disable=unused-import  (--model_dir)

EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None,
    "Folder to create the SavedModel in (must not exist yet), e.g. "
    "exports/cifar10/1. Required.")
# A SavedModel holds a TensorFlow checkpoint (variables/): same path rules.
common_flags.register_checkpoint_folder("export_dir")
