"""CIFAR-10 (found, downloaded or unpacked) or a synthetic stand-in, as arrays.

Public:

    load_cifar10(data_dir, cache_dir, ...) -> Dataset  find, fetch, unpack, load
    synthetic(num_train, num_test, seed) -> Dataset    a small learnable fake
    chw_rows_to_images(rows, layout) -> images         the layout fix (or bug)
    Dataset, DataError, LAYOUTS, CIFAR10_URL, CIFAR10_SHA256, CIFAR10_MD5

Where `load_cifar10` looks, in order:

    1. data_dir, if given: a folder holding cifar-10-batches-py/ or
       cifar-10-python.tar.gz, or the cifar-10-batches-py folder itself, or the
       .tar.gz file. Nothing usable there is an error (no silent download).
    2. cache_dir, in the same forms.
    3. The Keras cache: <keras_cache_dir>/cifar-10-batches-py (Keras 2) or
       <keras_cache_dir>/cifar-10-batches-py-target/cifar-10-batches-py
       (Keras 3).
    4. Otherwise it downloads data_url into cache_dir and unpacks it there.

An archive is unpacked safely (only the expected regular files; no links, no
absolute or `..` paths) into a temporary folder inside cache_dir, loaded and
checked, and only then renamed into place, so a failure leaves nothing behind.

The layout: a CIFAR-10 row stores three 32x32 planes (all red, then all green,
then all blue). `layout="nhwc"` reshapes a row to (3, 32, 32) and transposes
to (32, 32, 3). The 2018 notebook reshaped straight to (32, 32, 3), which puts
red, red, red values into the R, G, B slots of the first pixels; that bug is
kept as `layout="legacy_reshape"` for teaching.

Errors a user can cause raise `DataError`, one sentence saying what to do. This
module needs numpy and the standard library only, not TensorFlow.
"""

import contextlib
import dataclasses
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib

import numpy as np

from tf_raw import cifar_format
from tf_raw import download

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = (
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # Published on the CIFAR page.

# "nhwc": correct (transpose the channel planes); "legacy_reshape": the bug.
LAYOUTS = ("nhwc", "legacy_reshape")

ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIRNAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
_REQUIRED_FILES = TRAIN_BATCHES + (TEST_BATCH, META_FILE)
_OPTIONAL_FILES = ("readme.html",)
# Where Keras keeps an unpacked CIFAR-10, relative to its cache folder.
_KERAS_LOCATIONS = (BATCHES_DIRNAME,  # Keras 2 / tf.keras.
                    os.path.join("cifar-10-batches-py-target", BATCHES_DIRNAME))


class DataError(Exception):
  """A problem with the user's data or network; str(e) says what to do."""


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
  size = cifar_format.IMAGE_SIZE
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


# ---------------------------------------------------------------------------
# Reading an unpacked cifar-10-batches-py folder.


def _read_batches_folder(folder):
  """Reads and checks all batches of a cifar-10-batches-py folder.

  Returns:
    (train_rows uint8 (N, 3072), train_labels int32 (N,), test_rows,
    test_labels, class_names tuple of str).
  """
  for name in _REQUIRED_FILES:
    if not os.path.isfile(os.path.join(folder, name)):
      raise DataError(
          f"{folder} has no {name}; a CIFAR-10 folder holds data_batch_1..5, "
          "test_batch and batches.meta, so extract cifar-10-python.tar.gz "
          "again or point --data_dir elsewhere.")
  try:
    class_names = cifar_format.read_meta(os.path.join(folder, META_FILE))
    train = [cifar_format.read_batch(os.path.join(folder, name),
                                     num_classes=len(class_names))
             for name in TRAIN_BATCHES]
    test_rows, test_labels = cifar_format.read_batch(
        os.path.join(folder, TEST_BATCH), num_classes=len(class_names))
  except cifar_format.FormatError as error:
    raise DataError(str(error)) from error
  train_rows = np.concatenate([rows for rows, _ in train])
  train_labels = np.concatenate([labels for _, labels in train])
  return train_rows, train_labels, test_rows, test_labels, class_names


# ---------------------------------------------------------------------------
# Unpacking cifar-10-python.tar.gz safely.


def _expected_members():
  names = _REQUIRED_FILES + _OPTIONAL_FILES
  return {posixpath.join(BATCHES_DIRNAME, name) for name in names}


def _select_members(tar, archive):
  """The archive's members worth extracting, after refusing unsafe ones."""
  expected = _expected_members()
  selected = []
  for member in tar.getmembers():  # Reads the whole archive: finds truncation.
    name = member.name
    if (name.startswith("/") or os.path.isabs(name)
        or ".." in name.replace("\\", "/").split("/")):
      raise DataError(
          f"{archive} contains the unsafe path {name!r}, so it is not the "
          "official CIFAR-10 archive; delete it and download it again.")
    if member.issym() or member.islnk():
      raise DataError(
          f"{archive} contains the link {name!r}, so it is not the official "
          "CIFAR-10 archive; delete it and download it again.")
    normalized = posixpath.normpath(name)  # "./a/b" -> "a/b".
    if normalized == BATCHES_DIRNAME and member.isdir():
      selected.append(member)
    elif normalized in expected:
      if not member.isfile():
        raise DataError(
            f"{archive} holds {name!r} as something other than a regular "
            "file, so it is not the official CIFAR-10 archive; delete it and "
            "download it again.")
      selected.append(member)
    # Anything else (e.g. macOS "._" files) is not needed and not extracted.
  found = {posixpath.normpath(member.name) for member in selected}
  missing = sorted(posixpath.basename(name)
                   for name in expected - found
                   if posixpath.basename(name) in _REQUIRED_FILES)
  if missing:
    raise DataError(
        f"{archive} lacks {', '.join(missing)} under {BATCHES_DIRNAME}/, so it "
        "is not a complete CIFAR-10 python archive; download it again.")
  return selected


def _extract(archive, dest_folder):
  """Extracts the expected CIFAR-10 members of `archive` into `dest_folder`."""
  try:
    with tarfile.open(archive, "r:gz") as tar:
      members = _select_members(tar, archive)
      # filter="data" is tarfile's own guard (no links out, no devices, sane
      # permissions): a second lock behind `_select_members`.
      tar.extractall(dest_folder, members=members, filter="data")
  except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
    # Truncated or corrupt gzip/tar data (BadGzipFile is an OSError), or a
    # failed write.
    raise DataError(
        f"Could not unpack {archive} ({type(error).__name__}: {error}); it is "
        "damaged or incomplete, so delete it and download it again.") from error


def _unpack_and_read(archive, cache_dir, keep):
  """Unpacks `archive` into a temporary folder in cache_dir and reads it.

  Args:
    archive: a cifar-10-python.tar.gz.
    cache_dir: an existing folder on the same filesystem as the result.
    keep: move the unpacked cifar-10-batches-py/ into cache_dir on success.

  Returns:
    What `_read_batches_folder` returns.
  """
  work_folder = tempfile.mkdtemp(prefix=".unpacking-", dir=cache_dir)
  try:
    _extract(archive, work_folder)
    unpacked = os.path.join(work_folder, BATCHES_DIRNAME)
    arrays = _read_batches_folder(unpacked)  # Checks every file before keeping.
    if keep:
      try:
        os.rename(unpacked, os.path.join(cache_dir, BATCHES_DIRNAME))
      except OSError:
        # Another process got there first; its copy is as good as ours.
        if not os.path.isdir(os.path.join(cache_dir, BATCHES_DIRNAME)):
          raise
    return arrays
  finally:
    shutil.rmtree(work_folder, ignore_errors=True)


# ---------------------------------------------------------------------------
# Finding CIFAR-10.


def _find_in(folder):
  """What `folder` offers: ("batches", path), ("archive", path) or None."""
  if os.path.isfile(folder) and folder.endswith(".tar.gz"):
    return "archive", folder
  is_named_batches = (os.path.isdir(folder) and os.path.basename(
      os.path.normpath(folder)) == BATCHES_DIRNAME)
  if is_named_batches or os.path.isfile(os.path.join(folder, TRAIN_BATCHES[0])):
    return "batches", folder
  if os.path.isdir(os.path.join(folder, BATCHES_DIRNAME)):
    return "batches", os.path.join(folder, BATCHES_DIRNAME)
  if os.path.isfile(os.path.join(folder, ARCHIVE_NAME)):
    return "archive", os.path.join(folder, ARCHIVE_NAME)
  return None


def _make_cache_dir(cache_dir):
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as error:
    raise DataError(f"Cannot create the cache folder {cache_dir} "
                    f"({error.strerror or error}); choose a writable one."
                    ) from error


@contextlib.contextmanager
def _cache_dir_made(cache_dir):
  """Creates cache_dir for the block; if the block fails, removes the folders
  it created that are still empty, so a failed run leaves nothing behind."""
  created = []  # Deepest first.
  path = os.path.abspath(cache_dir)
  while not os.path.exists(path):
    created.append(path)
    path = os.path.dirname(path)
  _make_cache_dir(cache_dir)
  try:
    yield
  except BaseException:
    for folder in created:
      try:
        os.rmdir(folder)
      except OSError:
        break  # Not empty: it holds something worth keeping.
    raise


def _unpack_cached_archive(archive, cache_dir):
  try:
    return _unpack_and_read(archive, cache_dir, keep=True)
  except DataError:
    # The cache is ours: drop a bad archive so the next run downloads afresh.
    os.remove(archive)
    raise


def _load_raw(data_dir, cache_dir, data_url, keras_cache_dir, timeout_s,
              expected_sha256, show_progress):
  """Finds CIFAR-10 (see the module docstring) and returns its raw arrays."""
  if data_dir:
    data_dir = os.path.expanduser(data_dir)
    found = _find_in(data_dir)
    if found is None:
      raise DataError(
          f"Found no CIFAR-10 in --data_dir={data_dir}; point it at a folder "
          f"holding {BATCHES_DIRNAME}/ or {ARCHIVE_NAME} (or at the "
          f"{BATCHES_DIRNAME} folder itself), or leave it unset to download.")
    kind, path = found
    if kind == "batches":
      return _read_batches_folder(path)
    # The user's archive stays untouched; we unpack a private copy and drop
    # it afterwards, so it never shadows or overwrites the cache.
    with _cache_dir_made(cache_dir):
      return _unpack_and_read(path, cache_dir, keep=False)

  found = _find_in(cache_dir) if os.path.isdir(cache_dir) else None
  if found is None:
    for location in _KERAS_LOCATIONS:
      keras_batches = os.path.join(keras_cache_dir, location)
      if os.path.isfile(os.path.join(keras_batches, TRAIN_BATCHES[0])):
        return _read_batches_folder(keras_batches)
    with _cache_dir_made(cache_dir):
      archive = os.path.join(cache_dir, ARCHIVE_NAME)
      try:
        download.download_file(
            data_url, archive, expected_sha256=expected_sha256,
            # The md5 is published for the official file only.
            expected_md5=(CIFAR10_MD5 if expected_sha256 == CIFAR10_SHA256
                          else None),
            timeout_s=timeout_s, show_progress=show_progress)
      except download.DownloadError as error:
        raise DataError(str(error)) from error
      return _unpack_cached_archive(archive, cache_dir)

  kind, path = found
  if kind == "batches":
    return _read_batches_folder(path)
  return _unpack_cached_archive(path, cache_dir)


def load_cifar10(data_dir, cache_dir, data_url=CIFAR10_URL, layout="nhwc",
                 keras_cache_dir="~/.keras/datasets", timeout_s=60.0,
                 expected_sha256=CIFAR10_SHA256, show_progress=True):
  """Finds, downloads if needed, and loads CIFAR-10.

  Args:
    data_dir: None, or where the user put CIFAR-10 (see the module docstring
      for the accepted forms). Takes precedence over everything else.
    cache_dir: folder for the downloaded archive and the unpacked batches.
    data_url: where to download cifar-10-python.tar.gz from.
    layout: "nhwc" (correct) or "legacy_reshape" (the notebook's bug).
    keras_cache_dir: Keras's datasets folder, searched after cache_dir.
    timeout_s: seconds to wait for the server, per connection and per read.
    expected_sha256: checksum of the archive; the default is the official one
      (then the official md5 is checked too). Tests pass their own.
    show_progress: print download progress when stderr is a terminal.

  Returns:
    A `Dataset`: 50,000 train and 10,000 test images for the official files,
    uint8 (N, 32, 32, 3) and int32 labels.

  Raises:
    DataError: nothing usable found, the download failed, or a file is bad.
    ValueError: unknown layout (a programming error).
  """
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}.")
  train_rows, train_labels, test_rows, test_labels, class_names = _load_raw(
      data_dir, os.path.expanduser(cache_dir), data_url,
      os.path.expanduser(keras_cache_dir), timeout_s, expected_sha256,
      show_progress)
  return Dataset(
      train_images=chw_rows_to_images(train_rows, layout),  # (N, 32, 32, 3)
      train_labels=train_labels,  # (N,) int32
      test_images=chw_rows_to_images(test_rows, layout),  # (M, 32, 32, 3)
      test_labels=test_labels,  # (M,) int32
      class_names=class_names)


# ---------------------------------------------------------------------------
# A synthetic stand-in: learnable, deterministic, no download.

_SYNTHETIC_CLASSES = 10
_SYNTHETIC_MAX_SHIFT = 3  # Each image is its template moved by up to 3 px.
_SYNTHETIC_NOISE = 50.0  # Per-pixel Gaussian noise, in 0..255 units.


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
  size = cifar_format.IMAGE_SIZE
  labels = rng.permutation(np.arange(num_images) % num_classes).astype(np.int32)
  offsets = rng.integers(0, padded - size + 1, size=(num_images, 2))
  images = np.empty((num_images, size, size, 3), np.float32)
  for index, (label, (dy, dx)) in enumerate(zip(labels, offsets)):
    images[index] = templates[label, dy:dy + size, dx:dx + size]
  images += rng.uniform(-20, 20, size=(num_images, 1, 1, 1))  # Brightness.
  images += rng.normal(0, _SYNTHETIC_NOISE, size=images.shape)
  return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def synthetic(num_train=5000, num_test=1000, seed=0):
  """A small, deterministic, learnable stand-in for CIFAR-10.

  Ten classes, each a smooth colour pattern (see `_class_templates`); every
  image is its class's pattern shifted by up to 3 pixels, with a random
  brightness offset and strong per-pixel noise, so no single pixel tells the
  classes apart but the whole picture does.

  Args:
    num_train: training images (classes balanced to within one).
    num_test: test images.
    seed: the same seed gives the same arrays.

  Returns:
    A `Dataset` shaped like CIFAR-10's, with class names "class_0".."class_9".
  """
  rng = np.random.default_rng(seed)
  padded = cifar_format.IMAGE_SIZE + 2 * _SYNTHETIC_MAX_SHIFT
  templates = _class_templates(rng, _SYNTHETIC_CLASSES, padded)
  train_images, train_labels = _synthetic_split(rng, templates, num_train)
  test_images, test_labels = _synthetic_split(rng, templates, num_test)
  return Dataset(
      train_images=train_images, train_labels=train_labels,
      test_images=test_images, test_labels=test_labels,
      class_names=tuple(f"class_{label}"
                        for label in range(_SYNTHETIC_CLASSES)))


# ---------------------------------------------------------------------------
# The one entry point programs use.

DATASETS = ("cifar10", "synthetic")


def load(config):
  """Loads the dataset a `config.TrainConfig` names (cifar10 or synthetic).

  A --data_dir holding a train/ folder of class folders is your own images
  (see `tf_raw/image_folder.py`), not CIFAR-10.

  Args:
    config: any object with the TrainConfig data fields (dataset, data_dir,
      cache_dir, data_url, data_layout, synthetic_train_size,
      synthetic_test_size, seed, validation_split).

  Returns:
    A `Dataset`.
  """
  if config.dataset == "synthetic":
    return synthetic(config.synthetic_train_size, config.synthetic_test_size,
                     seed=config.seed)
  if config.dataset == "cifar10" and config.data_dir and os.path.isdir(
      os.path.join(os.path.expanduser(config.data_dir), "train")):
    # Imported here: decoding needs TensorFlow, the rest of this module not.
    from tf_raw import image_folder  # pylint: disable=g-import-not-at-top
    return image_folder.load(config.data_dir, config.validation_split,
                             config.cache_dir)
  if config.dataset == "cifar10":
    return load_cifar10(config.data_dir, config.cache_dir, config.data_url,
                        layout=config.data_layout)
  raise ValueError(f"dataset must be one of {DATASETS}, not "
                   f"{config.dataset!r}.")
