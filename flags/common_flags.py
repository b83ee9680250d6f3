"""Flags that several programs share, each defined (and validated) here once.

A program's flag module calls the `define_*` functions it needs, with its own
defaults where they differ (`compare` trains on synthetic data with dropout
off; `graph` only needs the keep probabilities). Each returns the absl
`FlagHolder`s, so the program's module can expose them as constants.
"""

import math
import os
import urllib.parse

from absl import flags

from tf_raw import config as config_lib

_D = config_lib.TrainConfig()  # The defaults.


def define_data(dataset=_D.dataset):
  """--dataset, --data_dir, --data_url, --cache_dir, --data_layout, sizes."""
  holders = dict(
      dataset=flags.DEFINE_enum(
          "dataset", dataset, ["cifar10", "synthetic"],
          "Which images to train on. cifar10: the real thing (found or "
          "downloaded); synthetic: a small deterministic learnable set for "
          "tests and demos. Notebook: cifar10."),
      data_dir=flags.DEFINE_string(
          "data_dir", _D.data_dir,
          "Folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz, or "
          "your own images as train/<class>/*.jpg|png (and optionally "
          "test/<class>/). Default: look in --cache_dir and the Keras cache, "
          "else download."),
      data_url=flags.DEFINE_string(
          "data_url", _D.data_url,
          "Where to download cifar-10-python.tar.gz from when it is not "
          "found locally (http or https URL)."),
      cache_dir=flags.DEFINE_string(
          "cache_dir", _D.cache_dir,
          "Folder where downloaded and extracted CIFAR-10, and the decoded "
          "images of --data_dir image folders, are kept between runs."),
      data_layout=flags.DEFINE_enum(
          "data_layout", _D.data_layout, ["nhwc", "legacy_reshape"],
          "How CIFAR's channels-first rows become NHWC images. nhwc: "
          "transpose (correct); legacy_reshape: the notebook's reshape bug, "
          "which scrambles every image (for teaching). Notebook: "
          "legacy_reshape."),
      synthetic_train_size=flags.DEFINE_integer(
          "synthetic_train_size", _D.synthetic_train_size,
          "Training images in --dataset=synthetic (at most 100,000).",
          lower_bound=1, upper_bound=100_000),
      synthetic_test_size=flags.DEFINE_integer(
          "synthetic_test_size", _D.synthetic_test_size,
          "Test images in --dataset=synthetic (at most 100,000).",
          lower_bound=1, upper_bound=100_000),
  )
  flags.register_validator(
      "data_url", _is_http_url,
      "--data_url must be an http:// or https:// URL with a host name.")
  flags.register_validator(
      "data_dir",
      lambda v: v is None or os.path.exists(os.path.expanduser(v)),
      "--data_dir must be an existing folder holding cifar-10-batches-py/ or "
      "cifar-10-python.tar.gz (or that archive itself), or train/<class>/ "
      "image folders.")
  register_not_empty("cache_dir")
  return holders


def define_batch_and_rate():
  """--batch_size and --learning_rate."""
  holders = dict(
      batch_size=flags.DEFINE_integer(
          "batch_size", _D.batch_size,
          "Images per training step. Notebook: 128.", lower_bound=1),
      learning_rate=flags.DEFINE_float(
          "learning_rate", _D.learning_rate,
          "RMSProp step size (per step, no schedule). Notebook: 0.001.",
          lower_bound=0.0),
  )
  register_finite("learning_rate")
  return holders


def define_seed(help_text=(
    "Seed of the initial weights, the epoch order and dropout; the same seed "
    "repeats a run on the same machine. Notebook: none.")):
  """--seed, which becomes an int64 tensor."""
  return flags.DEFINE_integer("seed", _D.seed, help_text, lower_bound=0,
                              upper_bound=2**63 - 1)


def define_keep_probs(keep_prob_conv=_D.keep_prob_conv,
                      keep_prob_hidden=_D.keep_prob_hidden, note=""):
  """--keep_prob_conv and --keep_prob_hidden, each checked to be in (0, 1]."""
  holders = dict(
      keep_prob_conv=flags.DEFINE_float(
          "keep_prob_conv", keep_prob_conv,
          "Dropout keep probability after each conv block and on the "
          f"flattened features, in (0, 1]; 1 turns it off.{note} "
          "Notebook: 0.8."),
      keep_prob_hidden=flags.DEFINE_float(
          "keep_prob_hidden", keep_prob_hidden,
          "Dropout keep probability after the 625-unit hidden layer, in "
          "(0, 1]. Notebook: 0.5."),
  )
  for name in holders:
    flags.register_validator(
        name, lambda v: v is not None and 0.0 < v <= 1.0,
        f"--{name} must be in (0, 1]: it is a keep probability, not a drop "
        "rate.")
  return holders


def _is_http_url(value):
  """True for a well-formed http(s) URL with a host (the downloader's rule)."""
  try:
    parts = urllib.parse.urlsplit(value)
    _ = parts.port  # Raises ValueError for a bad port.
  except ValueError:  # e.g. "http://[::1/x": an unclosed IPv6 bracket.
    return False
  return parts.scheme in ("http", "https") and bool(parts.hostname)


# TensorFlow's checkpoint functions (tf.train.CheckpointManager,
# latest_checkpoint, checkpoint_exists) treat the whole path as a glob
# pattern, and the manager also writes files under the same path, so no
# escaping can make both work: a folder with these characters is refused.
GLOB_CHARACTERS = "*?["


def expand_path(path):
  """`~` expanded once, where flags become the config (None stays None)."""
  return os.path.expanduser(path) if path else path


def register_checkpoint_folder(name):
  """--name is a folder TensorFlow checkpoints go in (a run, a SavedModel).

  Refused: glob characters anywhere in its full path, and names that are
  not UTF-8 (TensorFlow takes paths as UTF-8 strings).
  """
  def no_glob(value):
    if not value:
      return True
    path = os.path.abspath(os.path.expanduser(value))
    return not any(character in path for character in GLOB_CHARACTERS)

  def utf8(value):
    try:
      return not value or bool(value.encode("utf-8"))
    except UnicodeEncodeError:  # Undecodable bytes from the command line.
      return False
  flags.register_validator(
      name, utf8,
      f"--{name} must be UTF-8 text: TensorFlow cannot use file names made "
      "of other bytes; choose another folder name.")
  flags.register_validator(
      name, no_glob,
      f"--{name} must not contain *, ? or [ anywhere in its full path: "
      "TensorFlow reads checkpoint paths as glob patterns, so such a folder's "
      "checkpoints could never be found again; choose another folder.")


def register_finite(name):
  """NaN passes absl's bounds (every comparison with NaN is False): refuse it."""
  flags.register_validator(name, lambda v: v is not None and math.isfinite(v),
                           f"--{name} must be a finite number.")


def register_not_empty(name):
  flags.register_validator(name, lambda v: bool(v and v.strip()),
                           f"--{name} must name a folder (it is empty).")
