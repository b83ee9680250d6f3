"""Finding, downloading and safely unpacking the official CIFAR-10 archive.

    load_cifar10(data_dir, cache_dir, ...) -> data.Dataset

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
Reading the batch files and the layout fix are the lesson's (`tf_raw.data`).
This module needs numpy and the standard library only, not TensorFlow.
"""

import contextlib
import errno
import gzip
import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib

from tf_raw import data
from tf_raw.sources import download

CIFAR10_SHA256 = (
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # Published on the CIFAR page.
ARCHIVE_NAME = "cifar-10-python.tar.gz"
_OPTIONAL_FILES = ("readme.html",)
# Where Keras keeps an unpacked CIFAR-10, relative to its cache folder.
_KERAS_LOCATIONS = (data.BATCHES_DIRNAME,  # Keras 2 / tf.keras.
                    os.path.join("cifar-10-batches-py-target",
                                 data.BATCHES_DIRNAME))


# ---------------------------------------------------------------------------
# Unpacking cifar-10-python.tar.gz safely.


def _expected_members():
  names = data.REQUIRED_FILES + _OPTIONAL_FILES
  return {posixpath.join(data.BATCHES_DIRNAME, name) for name in names}


def _select_members(tar, archive):
  """The archive's members worth extracting, after refusing unsafe ones."""
  expected = _expected_members()
  selected = []
  for member in tar.getmembers():  # Reads the whole archive: finds truncation.
    name = member.name
    if (name.startswith("/") or os.path.isabs(name)
        or ".." in name.replace("\\", "/").split("/")):
      raise data.DataError(
          f"{archive} contains the unsafe path {name!r}, so it is not the "
          "official CIFAR-10 archive; delete it and download it again.")
    if member.issym() or member.islnk():
      raise data.DataError(
          f"{archive} contains the link {name!r}, so it is not the official "
          "CIFAR-10 archive; delete it and download it again.")
    normalized = posixpath.normpath(name)  # "./a/b" -> "a/b".
    if normalized == data.BATCHES_DIRNAME and member.isdir():
      selected.append(member)
    elif normalized in expected:
      if not member.isfile():
        raise data.DataError(
            f"{archive} holds {name!r} as something other than a regular "
            "file, so it is not the official CIFAR-10 archive; delete it and "
            "download it again.")
      selected.append(member)
    # Anything else (e.g. macOS "._" files) is not needed and not extracted.
  found = {posixpath.normpath(member.name) for member in selected}
  missing = sorted(posixpath.basename(name)
                   for name in expected - found
                   if posixpath.basename(name) in data.REQUIRED_FILES)
  if missing:
    raise data.DataError(
        f"{archive} lacks {', '.join(missing)} under {data.BATCHES_DIRNAME}/, so it "
        "is not a complete CIFAR-10 python archive; download it again.")
  return selected


class UnpackIOError(data.DataError):
  """Reading the archive or writing the unpacked files failed (disk full,
  permissions): the archive itself may be fine, so it is never deleted."""


def _io_error(archive, folder, error):
  reason = error.strerror or str(error)
  if error.errno in (errno.ENOSPC, errno.EDQUOT):
    advice = (f"free some disk space in {folder} (or choose another "
              "--cache_dir), then run again")
  else:
    advice = (f"check that {archive} is readable and {folder} writable (or "
              "choose another --cache_dir), then run again")
  return UnpackIOError(f"Could not unpack {archive} into {folder} ({reason}); "
                       f"{advice}.")


def _extract(archive, dest_folder):
  """Extracts the expected CIFAR-10 members of `archive` into `dest_folder`.

  Raises:
    data.DataError: the archive is damaged or not CIFAR-10.
    UnpackIOError: a read or write failed (the archive may be fine).
  """
  try:
    with tarfile.open(archive, "r:gz") as tar:
      members = _select_members(tar, archive)
      # filter="data" is tarfile's own guard (no links out, no devices, sane
      # permissions): a second lock behind `_select_members`.
      tar.extractall(dest_folder, members=members, filter="data")
  except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
    # Truncated or corrupt gzip/tar data.
    raise data.DataError(
        f"Could not unpack {archive} ({type(error).__name__}: {error}); it is "
        "damaged or incomplete, so delete it and download it again.") from error
  except OSError as error:
    # A failed read or write (ENOSPC, EACCES, ...) says nothing about the
    # archive's contents.
    raise _io_error(archive, os.path.dirname(dest_folder), error) from error


def _unpack_and_read(archive, cache_dir, keep):
  """Unpacks `archive` into a temporary folder in cache_dir and reads it.

  Args:
    archive: a cifar-10-python.tar.gz.
    cache_dir: an existing folder on the same filesystem as the result.
    keep: move the unpacked cifar-10-batches-py/ into cache_dir on success.

  Returns:
    What `data.read_batches_folder` returns.
  """
  try:
    work_folder = tempfile.mkdtemp(prefix=".unpacking-", dir=cache_dir)
  except OSError as error:
    raise _io_error(archive, cache_dir, error) from error
  try:
    _extract(archive, work_folder)
    unpacked = os.path.join(work_folder, data.BATCHES_DIRNAME)
    arrays = data.read_batches_folder(unpacked)  # Checks every file before keeping.
    if keep:
      try:
        os.rename(unpacked, os.path.join(cache_dir, data.BATCHES_DIRNAME))
      except OSError:
        # Another process got there first; its copy is as good as ours.
        if not os.path.isdir(os.path.join(cache_dir, data.BATCHES_DIRNAME)):
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
      os.path.normpath(folder)) == data.BATCHES_DIRNAME)
  if is_named_batches or os.path.isfile(os.path.join(folder, data.TRAIN_BATCHES[0])):
    return "batches", folder
  if os.path.isdir(os.path.join(folder, data.BATCHES_DIRNAME)):
    return "batches", os.path.join(folder, data.BATCHES_DIRNAME)
  if os.path.isfile(os.path.join(folder, ARCHIVE_NAME)):
    return "archive", os.path.join(folder, ARCHIVE_NAME)
  return None


def _make_cache_dir(cache_dir):
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as error:
    raise data.DataError(f"Cannot create the cache folder {cache_dir} "
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


def _sha256_of_file(path):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _unpack_cached_archive(archive, cache_dir, expected_sha256):
  try:
    return _unpack_and_read(archive, cache_dir, keep=True)
  except UnpackIOError:
    raise  # Disk full or permissions: the archive is not to blame.
  except data.DataError:
    # The cache is ours: drop a bad archive so the next run downloads
    # afresh, but only when its checksum proves it bad.
    try:
      condemned = _sha256_of_file(archive) != expected_sha256
    except OSError:
      condemned = False
    if condemned:
      os.remove(archive)
    raise


def _load_raw(data_dir, cache_dir, data_url, keras_cache_dir, timeout_s,
              expected_sha256, show_progress):
  """Finds CIFAR-10 (see the module docstring) and returns its raw arrays."""
  if data_dir:
    data_dir = os.path.expanduser(data_dir)
    found = _find_in(data_dir)
    if found is None:
      raise data.DataError(
          f"Found no CIFAR-10 in --data_dir={data_dir}; point it at a folder "
          f"holding {data.BATCHES_DIRNAME}/ or {ARCHIVE_NAME} (or at the "
          f"{data.BATCHES_DIRNAME} folder itself), or leave it unset to download.")
    kind, path = found
    if kind == "batches":
      return data.read_batches_folder(path)
    # The user's archive stays untouched; we unpack a private copy and drop
    # it afterwards, so it never shadows or overwrites the cache.
    with _cache_dir_made(cache_dir):
      return _unpack_and_read(path, cache_dir, keep=False)

  found = _find_in(cache_dir) if os.path.isdir(cache_dir) else None
  if found is None:
    for location in _KERAS_LOCATIONS:
      keras_batches = os.path.join(keras_cache_dir, location)
      if os.path.isfile(os.path.join(keras_batches, data.TRAIN_BATCHES[0])):
        return data.read_batches_folder(keras_batches)
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
        raise data.DataError(str(error)) from error
      return _unpack_cached_archive(archive, cache_dir, expected_sha256)

  kind, path = found
  if kind == "batches":
    return data.read_batches_folder(path)
  return _unpack_cached_archive(path, cache_dir, expected_sha256)


def load_cifar10(data_dir, cache_dir, data_url=data.CIFAR10_URL, layout="nhwc",
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
    data.DataError: nothing usable found, the download failed, or a file is bad.
    ValueError: unknown layout (a programming error).
  """
  if layout not in data.LAYOUTS:
    raise ValueError(f"layout must be one of {data.LAYOUTS}, not {layout!r}.")
  train_rows, train_labels, test_rows, test_labels, class_names = _load_raw(
      data_dir, os.path.expanduser(cache_dir), data_url,
      os.path.expanduser(keras_cache_dir), timeout_s, expected_sha256,
      show_progress)
  return data.Dataset(
      train_images=data.chw_rows_to_images(train_rows, layout),  # (N, 32, 32, 3)
      train_labels=train_labels,  # (N,) int32
      test_images=data.chw_rows_to_images(test_rows, layout),  # (M, 32, 32, 3)
      test_labels=test_labels,  # (M,) int32
      class_names=class_names)
