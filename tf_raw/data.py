"""The data the lesson trains on: CIFAR-10's batch files as NHWC arrays.

Public:

    Dataset                                 uint8 NHWC images, int32 labels
    chw_rows_to_images(rows, layout)        the layout fix (or the bug)
    images_to_chw_rows, with_layout         back to rows; the bug on any data
    read_batches_folder(folder) -> arrays   a cifar-10-batches-py folder
    read_batch(path), read_meta(path)       one file, through a safe unpickler
    synthetic(num_train, num_test, seed)    a small learnable stand-in
    DataError, FormatError, LAYOUTS, CIFAR10_URL

The official `cifar-10-python.tar.gz` unpacks to

    cifar-10-batches-py/data_batch_1 ... data_batch_5  10,000 train images each
    cifar-10-batches-py/test_batch                     10,000 test images
    cifar-10-batches-py/batches.meta                   the 10 class names

Each batch is a dict pickled by Python 2's cPickle, protocol 2:

    {'batch_label': 'training batch 1 of 5',
     'labels': [6, 9, 9, 4, ...],        # N Python ints in 0..9
     'data': <uint8 ndarray (N, 3072)>,  # one image per row
     'filenames': ['leptodactylus_pentadactylus_s_000004.png', ...]}

The layout: a row is channels-first, three 32x32 planes (all red, then all
green, then all blue), so `row[c * 1024 + y * 32 + x]` is channel c of pixel
(y, x). `layout="nhwc"` reshapes a row to (3, 32, 32) and transposes to
(32, 32, 3). The 2018 notebook reshaped straight to (32, 32, 3), which puts
red, red, red values into the R, G, B slots of the first pixels; that bug is
kept as `layout="legacy_reshape"` for teaching.

Why a restricted unpickler: a pickle can import and call any function (GLOBAL
then REDUCE), so a tampered "batch" could run `os.system`. A real CIFAR-10
batch needs exactly three globals; anything else is refused before it is
imported.

Finding CIFAR-10 on disk, downloading and unpacking it, and reading your own
image folders is `tf_raw/sources/`; writing batch files is
`tf_raw/tools/cifar_writer.py`. Errors a user can cause raise `DataError` (a
damaged file: its subclass `FormatError`), one sentence saying what to do.
This module needs numpy and the standard library only, not TensorFlow.
"""

import dataclasses
import io
import os
import pickle

import numpy as np

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

IMAGE_SIZE = 32  # Pixels per side.
NUM_CHANNELS = 3  # Red, green, blue planes, in that order.
ROW_LENGTH = NUM_CHANNELS * IMAGE_SIZE * IMAGE_SIZE  # 3072 uint8s per image.
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
               "horse", "ship", "truck")
OFFICIAL_BATCH_SIZE = 10000  # Rows per official batch; other sizes load too.


# "nhwc": correct (transpose the channel planes); "legacy_reshape": the bug.
LAYOUTS = ("nhwc", "legacy_reshape")

BATCHES_DIRNAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
REQUIRED_FILES = TRAIN_BATCHES + (TEST_BATCH, META_FILE)


class DataError(Exception):
  """A problem with the user's data or network; str(e) says what to do."""


class FormatError(DataError):
  """A file is not a valid CIFAR-10 batch; str(e) says which and what to do."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays can't ==.
class Dataset:
  """Images and labels of a train and a test split.

  Attributes:
    train_images: uint8 (N, 32, 32, 3), NHWC, RGB, 0..255.
    train_labels: int32 (N,), in [0, num_classes).
    test_images: uint8 (M, 32, 32, 3).
    test_labels: int32 (M,).
    class_names: tuple of str, label i is class_names[i].
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  class_names: tuple

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def chw_rows_to_images(rows, layout="nhwc"):
  """Turns CIFAR rows into images.

  Args:
    rows: uint8 (N, 3072); row[c * 1024 + y * 32 + x] is channel c at (y, x).
    layout: "nhwc" (correct) or "legacy_reshape" (the notebook's bug).

  Returns:
    uint8 (N, 32, 32, 3), C-contiguous. With "nhwc", images[n, y, x, c] ==
    rows[n, c * 1024 + y * 32 + x]; with "legacy_reshape",
    images[n, y, x, c] == rows[n, (y * 32 + x) * 3 + c].

  Raises:
    ValueError: unknown layout.
  """
  size = IMAGE_SIZE
  num_images = rows.shape[0]
  if layout == "nhwc":
    planes = rows.reshape(num_images, 3, size, size)  # (N, C, H, W)
    images = planes.transpose(0, 2, 3, 1)  # (N, H, W, C)
  elif layout == "legacy_reshape":
    images = rows.reshape(num_images, size, size, 3)  # Scrambled (N, H, W, C).
  else:
    raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}.")
  # The transpose is a strided view; copy once so batches slice fast.
  return np.ascontiguousarray(images)


def images_to_chw_rows(images):
  """The inverse of `chw_rows_to_images(rows, "nhwc")`: uint8 (N, 3072) rows.

  Args:
    images: uint8 (N, 32, 32, 3), NHWC.

  Returns:
    uint8 (N, 3072), each row three channel planes, as CIFAR-10 stores them.
  """
  return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(
      len(images), ROW_LENGTH)


def with_layout(dataset, layout):
  """`dataset` (correct NHWC images) as `layout` would have read its rows.

  "legacy_reshape" scrambles every image as the notebook's reshape did, so
  the bug can be seen and trained on without CIFAR-10 (e.g. on `synthetic`).
  """
  if layout == "nhwc":
    return dataset
  return dataclasses.replace(
      dataset,
      train_images=chw_rows_to_images(
          images_to_chw_rows(dataset.train_images), layout),
      test_images=chw_rows_to_images(
          images_to_chw_rows(dataset.test_images), layout))


# ---------------------------------------------------------------------------
# Reading a cifar-10-batches-py folder, through a restricted unpickler.


def read_batches_folder(folder):
  """Reads and checks all batches of a cifar-10-batches-py folder.

  Returns:
    (train_rows uint8 (N, 3072), train_labels int32 (N,), test_rows,
    test_labels, class_names tuple of str).
  """
  for name in REQUIRED_FILES:
    if not os.path.isfile(os.path.join(folder, name)):
      raise DataError(
          f"{folder} has no {name}; a CIFAR-10 folder holds data_batch_1..5, "
          "test_batch and batches.meta, so extract cifar-10-python.tar.gz "
          "again or point --data_dir elsewhere.")
  class_names = read_meta(os.path.join(folder, META_FILE))
  train = [read_batch(os.path.join(folder, name), num_classes=len(class_names))
           for name in TRAIN_BATCHES]
  test_rows, test_labels = read_batch(os.path.join(folder, TEST_BATCH),
                                      num_classes=len(class_names))
  train_rows = np.concatenate([rows for rows, _ in train])
  train_labels = np.concatenate([labels for _, labels in train])
  return train_rows, train_labels, test_rows, test_labels, class_names


# The only globals a CIFAR-10 batch pickle refers to. NumPy 2 renamed
# `numpy.core` to `numpy._core`, and pickles written by NumPy 2 name the new
# module, so both spellings of `_reconstruct` are allowed.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
# The function NumPy's own array pickles call, fetched without importing a
# private module by name (so neither `numpy.core` nor `numpy._core` matters).
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]



class _CifarUnpickler(pickle.Unpickler):
  """An unpickler that builds arrays and plain containers, and nothing else."""

  def __init__(self, file, path):
    # encoding="bytes": Python 2 `str` objects (keys, labels' names, the array's
    # raw bytes) come back as `bytes`, exactly as they were stored.
    super().__init__(file, encoding="bytes")
    self._path = path

  def find_class(self, module, name):
    # Called for every GLOBAL/STACK_GLOBAL/INST/OBJ before anything is imported.
    if (module, name) not in _ALLOWED_GLOBALS:
      raise FormatError(
          f"{self._path} is not a CIFAR-10 batch and may be malicious (its "
          f"pickle asks to call {module}.{name}), so delete it and get "
          "CIFAR-10 from the official archive again.")
    return {"_reconstruct": _RECONSTRUCT, "ndarray": np.ndarray,
            "dtype": np.dtype}[name]

  def persistent_load(self, pid):
    raise FormatError(f"{self._path} is not a CIFAR-10 batch (it uses "
                      "persistent ids), so delete it and extract CIFAR-10 "
                      "again.")


def _unpickle(path):
  """Loads a pickle through `_CifarUnpickler`; any failure is a FormatError."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as err:
    raise FormatError(f"Could not read {path} ({err.strerror or err}); check "
                      "that the file exists and is readable.") from err
  try:
    return _CifarUnpickler(io.BytesIO(raw), path).load()
  except FormatError:
    raise
  except Exception as err:  # pylint: disable=broad-except
    # A truncated or garbled pickle can fail in many ways (EOFError,
    # UnpicklingError, ValueError, TypeError, struct.error, ...): all mean
    # "this file is damaged".
    raise FormatError(
        f"{path} is not a readable CIFAR-10 batch (truncated or corrupt: "
        f"{type(err).__name__}: {err}), so delete it and extract or download "
        "CIFAR-10 again.") from err


def read_batch(path, num_classes=NUM_CLASSES):
  """Reads one `data_batch_*` or `test_batch` file and checks it.

  Args:
    path: the batch file.
    num_classes: labels must lie in [0, num_classes).

  Returns:
    (data, labels): data is uint8 (N, 3072), one channels-first image per row;
    labels is int32 (N,).

  Raises:
    FormatError: the file is missing, damaged, not a CIFAR-10 batch, or holds
      wrongly shaped data or out-of-range labels.
  """
  batch = _unpickle(path)
  if not (isinstance(batch, dict) and b"data" in batch and b"labels" in batch):
    raise FormatError(
        f"{path} is not a CIFAR-10 batch (expected a dict with b'data' and "
        "b'labels'), so delete it and extract or download CIFAR-10 again.")
  data, labels = batch[b"data"], batch[b"labels"]
  if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
      or data.ndim != 2 or data.shape[1] != ROW_LENGTH or data.shape[0] == 0):
    shape = getattr(data, "shape", None)
    dtype = getattr(data, "dtype", type(data).__name__)
    raise FormatError(
        f"{path} holds data of shape {shape} and type {dtype}, but a CIFAR-10 "
        f"batch holds uint8 rows of {ROW_LENGTH} values (N, {ROW_LENGTH}), so "
        "rebuild it with tf_raw.tools.cifar_writer.write_batch.")
  labels = np.asarray(labels)
  if (labels.ndim != 1 or labels.dtype.kind not in "iu"
      or len(labels) != len(data)):
    raise FormatError(
        f"{path} has {len(data)} images but its labels are not {len(data)} "
        f"integers (got shape {labels.shape}, type {labels.dtype}), so rebuild "
        "it with tf_raw.tools.cifar_writer.write_batch.")
  out_of_range = np.flatnonzero((labels < 0) | (labels >= num_classes))
  if out_of_range.size:
    index = int(out_of_range[0])
    raise FormatError(
        f"{path} has label {labels[index]} at index {index}, outside 0.."
        f"{num_classes - 1}, so the file is corrupt: rebuild it or extract "
        "CIFAR-10 again.")
  return data, labels.astype(np.int32)


def read_meta(path):
  """Reads `batches.meta` and returns its class names.

  Args:
    path: the `batches.meta` file.

  Returns:
    A tuple of str, e.g. ('airplane', 'automobile', ..., 'truck').

  Raises:
    FormatError: the file is missing, damaged or has no list of names.
  """
  meta = _unpickle(path)
  names = meta.get(b"label_names") if isinstance(meta, dict) else None
  if (not isinstance(names, list) or not names
      or not all(isinstance(name, bytes) for name in names)):
    raise FormatError(
        f"{path} is not a CIFAR-10 batches.meta file (expected b'label_names', "
        "a list of names), so rebuild it with tf_raw.tools.cifar_writer.write_meta.")
  try:
    class_names = tuple(name.decode("utf-8") for name in names)
  except UnicodeDecodeError as error:
    raise FormatError(
        f"{path} holds a class name that is not UTF-8 text ({error.reason}), "
        "so rebuild it with tf_raw.tools.cifar_writer.write_meta.") from error
  if not all(name.strip() and name.isprintable() for name in class_names):
    raise FormatError(
        f"{path} holds an empty or unprintable class name, so rebuild it "
        "with tf_raw.tools.cifar_writer.write_meta.")
  return class_names



# ---------------------------------------------------------------------------
# A synthetic stand-in: learnable, deterministic, no download.

_SYNTHETIC_CLASSES = 10
_SYNTHETIC_MAX_SHIFT = 3  # Each image is its template moved by up to 3 px.
_SYNTHETIC_NOISE = 50.0  # Per-pixel Gaussian noise, in 0..255 units.
# Fraction of images (train and test) drawn from another class's pattern
# while keeping their label, like mislabelled photos: no model can beat
# about 1 - 0.2 + 0.2 / 10 = 0.82, so the curves rise and level off there
# instead of reaching 1.0.
_SYNTHETIC_MISLABELLED = 0.2


def _class_templates(rng, num_classes, size):
  """Smooth colour patterns, float (num_classes, size, size, 3) in ~[30, 225].

  Each class and channel is a sum of two low-frequency plane waves (0.5 to 2
  cycles across the image, random direction and phase) around a class colour.
  Such patterns differ everywhere, not in one pixel, which is what a small
  CNN picks up fast.
  """
  y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
  templates = np.empty((num_classes, size, size, 3))
  for label in range(num_classes):
    for channel in range(3):
      pattern = np.zeros((size, size))
      for _ in range(2):
        cycles = rng.uniform(0.5, 2.0)
        angle = rng.uniform(0, 2 * np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        direction = x * np.cos(angle) + y * np.sin(angle)
        pattern += np.sin(2 * np.pi * cycles * direction / 32 + phase)
      colour = rng.uniform(100, 156)
      templates[label, :, :, channel] = colour + 30 * pattern
  return templates


def _synthetic_split(rng, templates, num_images):
  """Draws `num_images` balanced, shuffled images from the templates."""
  num_classes, padded, _, _ = templates.shape
  size = IMAGE_SIZE
  labels = rng.permutation(np.arange(num_images) % num_classes).astype(np.int32)
  offsets = rng.integers(0, padded - size + 1, size=(num_images, 2))
  # The pattern each image shows: its label's, or for a mislabelled one
  # another class's (labels stay balanced).
  mislabelled = rng.random(num_images) < _SYNTHETIC_MISLABELLED
  patterns = np.where(
      mislabelled,
      (labels + rng.integers(1, num_classes, size=num_images)) % num_classes,
      labels)
  images = np.empty((num_images, size, size, 3), np.float32)
  for index, (pattern, (dy, dx)) in enumerate(zip(patterns, offsets)):
    images[index] = templates[pattern, dy:dy + size, dx:dx + size]
  images += rng.uniform(-20, 20, size=(num_images, 1, 1, 1))  # Brightness.
  images += rng.normal(0, _SYNTHETIC_NOISE, size=images.shape)
  return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def synthetic(num_train=5000, num_test=1000, seed=0):
  """A small, deterministic, learnable stand-in for CIFAR-10.

  Ten classes, each a smooth colour pattern (see `_class_templates`); every
  image is its class's pattern shifted by up to 3 pixels, with a random
  brightness offset and strong per-pixel noise, so no single pixel tells the
  classes apart but the whole picture does. A fixed 20% of the images show
  another class's pattern under their own label (mislabelled, as in real
  data sets), so accuracy levels off near 0.82, not at 1.0: a run learns
  visibly (about 250 steps of batch 32 before it takes off) without the task
  being trivial.

  Args:
    num_train: training images (classes balanced to within one).
    num_test: test images.
    seed: the same seed gives the same arrays.

  Returns:
    A `Dataset` shaped like CIFAR-10's, with class names "class_0".."class_9".
  """
  rng = np.random.default_rng(seed)
  padded = IMAGE_SIZE + 2 * _SYNTHETIC_MAX_SHIFT
  templates = _class_templates(rng, _SYNTHETIC_CLASSES, padded)
  train_images, train_labels = _synthetic_split(rng, templates, num_train)
  test_images, test_labels = _synthetic_split(rng, templates, num_test)
  return Dataset(
      train_images=train_images, train_labels=train_labels,
      test_images=test_images, test_labels=test_labels,
      class_names=tuple(f"class_{label}"
                        for label in range(_SYNTHETIC_CLASSES)))
