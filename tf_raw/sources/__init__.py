"""Where the images come from: CIFAR-10 found on disk, downloaded, or your own.

The lesson (`tf_raw.data`) reads CIFAR-10's batch files and turns them into
NHWC arrays. This package gets them there: it finds CIFAR-10 in --data_dir,
the cache or Keras's cache, downloads it otherwise (`download`, the standard
library's HTTP), unpacks the archive safely (`cifar10`), and reads a folder of
your own images, one sub-folder per class (`image_folder`). `load(config)` is
the one entry point; the programs call it.
"""

import os

from tf_raw import data
from tf_raw.sources import cifar10

DATASETS = ("cifar10", "synthetic")


def load(config):
  """Loads the dataset a `config.TrainConfig` names (cifar10 or synthetic).

  A --data_dir holding a train/ folder of class folders is your own images
  (see `tf_raw/sources/image_folder.py`), not CIFAR-10.

  Args:
    config: any object with the TrainConfig data fields (dataset, data_dir,
      cache_dir, data_url, data_layout, synthetic_train_size,
      synthetic_test_size, seed, validation_split).

  Returns:
    A `data.Dataset`.
  """
  if config.dataset == "synthetic":
    # --data_layout=legacy_reshape applies here too: the notebook's bug,
    # seen without the download.
    return data.with_layout(
        data.synthetic(config.synthetic_train_size,
                       config.synthetic_test_size, seed=config.seed),
        config.data_layout)
  if config.dataset == "cifar10" and config.data_dir and os.path.isdir(
      os.path.join(os.path.expanduser(config.data_dir), "train")):
    # Imported here: decoding images needs TensorFlow, CIFAR-10 does not, and
    # `python -m tf_raw.train` checks the data before importing TensorFlow.
    from tf_raw.sources import image_folder  # pylint: disable=g-import-not-at-top
    return data.with_layout(
        image_folder.load(config.data_dir, config.validation_split,
                          config.cache_dir), config.data_layout)
  if config.dataset == "cifar10":
    return cifar10.load_cifar10(config.data_dir, config.cache_dir,
                                config.data_url, layout=config.data_layout)
  raise ValueError(f"dataset must be one of {DATASETS}, not "
                   f"{config.dataset!r}.")
