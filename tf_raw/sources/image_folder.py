"""Your own images: a folder of class folders, decoded once into a `Dataset`.

    my_images/
      train/cat/001.jpg, train/cat/002.png, ..., train/dog/...   (required)
      test/cat/..., test/dog/...                                 (optional)

    dataset = image_folder.load(folder, validation_split=0.1, cache_dir=...)
    # python -m tf_raw.train --data_dir=my_images

* Class names are the folder names under train/, sorted; label i is the i-th.
  A test/ folder may hold the same classes (or fewer), never others.
* Without test/, a stratified `validation_split` of each class's training
  images is held out as the test split. The split uses a fixed seed
  (`SPLIT_SEED`), not the run's --seed, so runs with different seeds are
  scored on the same images.
* Every file is decoded with `tf.io.decode_image` (JPEG, PNG, GIF, BMP; greyscale
  becomes RGB) and, if it is not 32x32, resized to 32x32 (bilinear,
  antialiased), exactly as `python -m tf_raw.tools.predict` does.
* Files whose name starts with "." (.DS_Store, ._foo.jpg) are ignored. Any other
  file that is not a readable image is an error naming it: a stray file in a
  class folder is more likely a mistake than something to skip silently.
* Decoding 50,000 JPEGs takes a while, so the decoded uint8 arrays are cached in
  `cache_dir/image-folders/<fingerprint>.npz`, written atomically. The
  fingerprint covers every file's path, size and modification time, so
  adding, removing or editing an image makes a new cache. Old caches are not
  deleted; remove that folder to reclaim the space.

The training set is put in a fixed random order (like CIFAR-10's files), so
`--noshuffle` does not see one class after another.
"""

import hashlib
import os
import sys
import tempfile
import zipfile
import zlib

import numpy as np
import tensorflow as tf

from tf_raw import data

TRAIN_DIRNAME = "train"
TEST_DIRNAME = "test"
IMAGE_SIZE = 32  # Every image becomes [32, 32, 3], the network's input.
SPLIT_SEED = 0  # Seed of the validation split and of the training order.
CACHE_SUBDIR = "image-folders"
_CACHE_FORMAT = "tf_raw image folder cache v1"  # Part of the fingerprint.


# ---------------------------------------------------------------------------
# Decoding one image.


def decode_to_input_size(contents):
  """Decodes image bytes and resizes them to the network's input.

  Args:
    contents: string scalar tensor, the file's bytes (JPEG, PNG, GIF, BMP).

  Returns:
    uint8 [32, 32, 3] RGB. Greyscale and RGBA become RGB; animated GIFs give
    their first frame; any other size is resized with antialiased bilinear
    interpolation and rounded.

  Raises:
    tf.errors.InvalidArgumentError: not an image TensorFlow can decode.
  """
  image = tf.io.decode_image(contents, channels=3,
                             expand_animations=False)  # uint8 [H, W, 3]
  shape = tf.shape(image)

  def resize():
    resized = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE],
                              antialias=True)  # float32 [32, 32, 3]
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

  is_input_size = tf.logical_and(tf.equal(shape[0], IMAGE_SIZE),
                                 tf.equal(shape[1], IMAGE_SIZE))
  image = tf.cond(is_input_size, lambda: image, resize)
  return tf.ensure_shape(image, [IMAGE_SIZE, IMAGE_SIZE, 3])


def _decode_files(paths):
  """Decodes `paths` in parallel; uint8 [N, 32, 32, 3] in the same order.

  Raises:
    data.DataError: naming the first file that is not a readable image.
  """
  if not paths:
    return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)

  def read_and_decode(index, path):
    return index, decode_to_input_size(tf.io.read_file(path))

  # As bytes: a file name that is not UTF-8 (os.listdir's surrogate escapes)
  # cannot become a string tensor, its bytes can.
  path_bytes = np.array([os.fsencode(path) for path in paths], dtype=object)
  decoded = (tf.data.Dataset.from_tensor_slices(
      (np.arange(len(paths)), path_bytes))
             .map(read_and_decode, num_parallel_calls=tf.data.AUTOTUNE)
             # A bad file drops out instead of ending the pass; found below.
             .ignore_errors()
             .batch(1000))
  images = np.zeros((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
  seen = np.zeros(len(paths), bool)
  for indices, batch in decoded:
    images[indices.numpy()] = batch.numpy()
    seen[indices.numpy()] = True
  if not seen.all():
    bad = [paths[index] for index in np.flatnonzero(~seen)]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    try:  # Unreadable (permissions) rather than undecodable?
      with open(bad[0], "rb") as f:
        f.read(1)
    except OSError as error:
      raise data.DataError(
          f"Cannot read {_shown(bad[0])}{more} ({error.strerror or error}); "
          "fix its permissions or remove it from the folder.") from error
    raise data.DataError(
        f"{_shown(bad[0])}{more} is not a readable image (JPEG, PNG, GIF or "
        "BMP); remove it from the folder or replace it.")
  return images


def _shown(path):
  """A path for a message: as is, or repr() if it is not printable text."""
  text = os.fsdecode(path)
  return text if text.isprintable() else repr(text)


# ---------------------------------------------------------------------------
# Listing the folder.


def _visible(names):
  return sorted(name for name in names if not name.startswith("."))


def _list_split(split_folder, class_names=None):
  """Lists split_folder/<class>/<file>.

  Args:
    split_folder: a train/ or test/ folder.
    class_names: None to take the class folders found here (train/), or the
      training classes that a test/ folder may use.

  Returns:
    (class_names tuple, paths list of str, labels int32 [N]).
  """
  is_train = class_names is None
  found = [name for name in _visible(os.listdir(split_folder))
           if os.path.isdir(os.path.join(split_folder, name))]
  for name in found:
    try:
      name.encode("utf-8")
    except UnicodeEncodeError:
      raise data.DataError(
          f"The class folder {_shown(os.path.join(split_folder, name))} has "
          "a name that is not UTF-8 text (class names are saved with the "
          "run); rename it.") from None
  if is_train:
    class_names = tuple(found)
    if not class_names:
      raise data.DataError(
          f"{split_folder} has no class folders; put each class's images in "
          f"its own folder, e.g. {os.path.join(split_folder, 'cat', '1.jpg')}.")
  unknown = sorted(set(found) - set(class_names))
  if unknown:
    raise data.DataError(
        f"{split_folder} has the class folder {unknown[0]!r}, which train/ "
        "lacks; every test class needs training images too.")
  paths, labels = [], []
  for label, name in enumerate(class_names):
    class_folder = os.path.join(split_folder, name)
    if not os.path.isdir(class_folder):
      continue  # A test/ folder may lack a class.
    files = [os.path.join(class_folder, file_name)
             for file_name in _visible(os.listdir(class_folder))]
    if not files and is_train:
      raise data.DataError(
          f"{class_folder} holds no images; add some or remove the folder.")
    for path in files:
      if os.path.islink(path) and not os.path.exists(path):
        raise data.DataError(
            f"{_shown(path)} is a broken link (its target does not exist); "
            "remove it or point it at an image.")
      if not os.path.isfile(path):
        what = "a folder" if os.path.isdir(path) else "not a regular file"
        raise data.DataError(
            f"{_shown(path)} is {what}, but class folders hold only image "
            "files; move it out.")
    paths += files
    labels += [label] * len(files)
  return class_names, paths, np.array(labels, np.int32)


def fingerprint(folder, paths):
  """Hex digest of every file's name (relative to folder), size and mtime."""
  digest = hashlib.sha256(_CACHE_FORMAT.encode())
  for path in paths:
    stat = os.stat(path)
    name = os.fsencode(os.path.relpath(path, folder))  # Any bytes, even
    digest.update(name + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
  return digest.hexdigest()[:24]


# ---------------------------------------------------------------------------
# The cache.


def _read_cache(cache_path, num_images):
  """The cached uint8 [num_images, 32, 32, 3] images, or None.

  A missing, damaged (truncated, garbled, not a zip) or foreign file gives
  None: the images are decoded again and the cache rewritten.
  """
  try:
    with np.load(cache_path, allow_pickle=False) as arrays:
      images = arrays["images"]
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
          zlib.error, NotImplementedError, UnicodeDecodeError):
    return None
  if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and
          images.shape == (num_images, IMAGE_SIZE, IMAGE_SIZE, 3)):
    return None
  return images


def _write_cache(cache_path, arrays):
  """Writes the .npz atomically: a temporary file, then a rename."""
  folder = os.path.dirname(cache_path)
  try:
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".writing-", dir=folder)
    try:
      with os.fdopen(handle, "wb") as f:
        np.savez(f, **arrays)
      os.replace(temporary, cache_path)
    except BaseException:
      if os.path.exists(temporary):
        os.remove(temporary)
      raise
  except OSError as error:
    # The images are decoded; only the next run's speed is at stake.
    print(f"note: could not cache the decoded images in {folder} "
          f"({error.strerror or error}); the next run decodes them again.",
          file=sys.stderr)


# ---------------------------------------------------------------------------
# Loading.


def _split_off_validation(labels, fraction, rng):
  """Per class, the indices of round(fraction * count) held-out images."""
  held_out = []
  for label in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == label))
    held_out.append(members[:int(round(fraction * len(members)))])
  return np.sort(np.concatenate(held_out))


def load(folder, validation_split=0.1, cache_dir="~/.cache/tf_raw"):
  """Loads folder/train/<class>/* (and folder/test/<class>/*) as a `Dataset`.

  Args:
    folder: the folder holding train/ (see the module docstring).
    validation_split: fraction of each class held out as the test split when
      there is no test/ folder, in [0, 1). Ignored when test/ exists.
    cache_dir: where the decoded arrays are kept between runs (None: no
      cache file; decode every time).

  Returns:
    A `Dataset`: uint8 [N, 32, 32, 3] images, int32 labels, class_names from
    the folder names.

  Raises:
    data.DataError: no classes, an empty class, an unreadable file, or no
      test images (no test/ folder and validation_split 0).
  """
  folder = os.path.expanduser(folder)
  class_names, train_paths, train_labels = _list_split(
      os.path.join(folder, TRAIN_DIRNAME))
  test_folder = os.path.join(folder, TEST_DIRNAME)
  has_test = os.path.isdir(test_folder)
  if has_test:
    _, test_paths, test_labels = _list_split(test_folder, class_names)
    if not test_paths:
      raise data.DataError(f"{test_folder} holds no images; add some or remove "
                           "it to hold out part of train/ instead.")
  else:
    test_paths, test_labels = [], np.zeros(0, np.int32)
    if not 0.0 < validation_split < 1.0:
      raise data.DataError(
          f"{folder} has no test/ folder, so --validation_split must be "
          f"between 0 and 1 (got {validation_split}) to hold out images for "
          "evaluation.")

  all_paths = train_paths + test_paths
  cache_path = None
  if cache_dir:
    cache_path = os.path.join(os.path.expanduser(cache_dir), CACHE_SUBDIR,
                              fingerprint(folder, all_paths) + ".npz")
  images = _read_cache(cache_path, len(all_paths)) if cache_path else None
  if images is None:
    images = _decode_files(all_paths)  # (N_train + N_test, 32, 32, 3)
    if cache_path:
      _write_cache(cache_path, {"images": images})
  train_images, test_images = images[:len(train_paths)], images[len(train_paths):]

  rng = np.random.default_rng(SPLIT_SEED)
  if not has_test:
    held_out = _split_off_validation(train_labels, validation_split, rng)
    if len(held_out) == 0:
      raise data.DataError(
          f"--validation_split={validation_split} of {len(train_labels)} "
          "images holds out none; raise it or add a test/ folder.")
    kept = np.setdiff1d(np.arange(len(train_labels)), held_out)
    test_images, test_labels = train_images[held_out], train_labels[held_out]
    train_images, train_labels = train_images[kept], train_labels[kept]
  order = rng.permutation(len(train_labels))  # Mix the classes, once.
  return data.Dataset(
      train_images=np.ascontiguousarray(train_images[order]),
      train_labels=train_labels[order],
      test_images=np.ascontiguousarray(test_images),
      test_labels=test_labels,
      class_names=tuple(class_names))
