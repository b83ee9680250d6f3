"""Tests of tf_raw/data.py: layouts, finding CIFAR-10, bad data, synthetic.

Every CIFAR-10 here is a tiny official-format archive from `cifar_fixtures`,
whose pixel values come from a formula of (image, channel, row, col), so a
test can check each value's position independently of the loader.
"""

import hashlib
import os
import pathlib
import shlex
import tarfile
import urllib.parse

import numpy as np
import pytest

from tests import cifar_fixtures
from tf_raw.tools import cifar_writer
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import sources
from tf_raw.sources import cifar10

Route = cifar_fixtures.Route


def _load(data_dir, cache_dir, **kwargs):
  # Never the network, never the real ~/.keras.
  kwargs.setdefault("data_url", cifar_fixtures.closed_port_url())
  kwargs.setdefault("keras_cache_dir",
                    os.path.join(str(cache_dir), "..", "no_keras"))
  kwargs.setdefault("show_progress", False)
  return cifar10.load_cifar10(
      None if data_dir is None else str(data_dir), str(cache_dir), **kwargs)


def _assert_same(dataset, expected):
  np.testing.assert_array_equal(dataset.train_images, expected.train_images)
  np.testing.assert_array_equal(dataset.train_labels, expected.train_labels)
  np.testing.assert_array_equal(dataset.test_images, expected.test_images)
  np.testing.assert_array_equal(dataset.test_labels, expected.test_labels)
  assert dataset.class_names == expected.class_names


# ---------------------------------------------------------------------------
# Layouts.


def test_nhwc_puts_every_value_at_its_row_col_channel(tmp_path):
  batches, expected = cifar_fixtures.write_batches_folder(tmp_path / "user")
  dataset = _load(batches, tmp_path / "cache")
  _assert_same(dataset, expected)  # expected: from the formula, no transpose.
  assert dataset.train_images.shape == (15, 32, 32, 3)
  assert dataset.train_images.dtype == np.uint8
  assert dataset.train_labels.dtype == np.int32
  assert dataset.train_images.flags.c_contiguous
  assert dataset.num_classes == 10
  assert dataset.class_names[6] == "frog"
  # One value by hand: image 1, row 2, col 5, green (channel 1).
  assert dataset.train_images[1, 2, 5, 1] == (7 + 101 + 31 * 2 + 3 * 5) % 256


def test_legacy_reshape_reproduces_the_notebook_scramble(tmp_path):
  batches, _ = cifar_fixtures.write_batches_folder(tmp_path / "user")
  dataset = _load(batches, tmp_path / "cache", layout="legacy_reshape")
  # The notebook read row element f = (y * 32 + x) * 3 + k as pixel (y, x),
  # channel k; in the file, f is channel f // 1024 at (f % 1024 // 32, f % 32).
  image, y, x, k = np.indices(dataset.train_images.shape)
  flat = (y * 32 + x) * 3 + k
  expected = cifar_fixtures.pixel_value(image, flat // 1024, flat % 1024 // 32,
                                        flat % 32)
  np.testing.assert_array_equal(dataset.train_images, expected)
  # Concretely: the first pixel's "RGB" is red of (0,0), (0,1), (0,2).
  np.testing.assert_array_equal(
      dataset.train_images[0, 0, 0],
      [cifar_fixtures.pixel_value(0, 0, 0, col) for col in range(3)])
  assert dataset.train_images.flags.c_contiguous


def test_legacy_reshape_rows_are_three_real_rows_of_one_plane():
  # The description in docs/tf1_to_tf2.md, checked value by value: scrambled
  # row y is real rows 3y', 3y'+1, 3y'+2 of one colour plane, and its slot c
  # takes every third of those 96 values, starting at c.
  rows = np.random.default_rng(1).integers(0, 256, (2, 3072), dtype=np.uint8)
  real = data.chw_rows_to_images(rows, "nhwc")
  legacy = data.chw_rows_to_images(rows, "legacy_reshape")
  planes = {}
  for y in range(32):
    if y in (10, 21):  # 96y..96y+95 straddles two planes.
      continue
    plane, first_row = divmod(3 * y, 32)
    planes.setdefault(plane, []).append(y)
    three_rows = real[:, first_row:first_row + 3, :, plane].reshape(2, 96)
    for c in range(3):
      np.testing.assert_array_equal(legacy[:, y, :, c], three_rows[:, c::3])
  # Top third red, middle third green, bottom third blue.
  assert planes == {0: list(range(10)), 1: list(range(11, 21)),
                    2: list(range(22, 32))}


def test_legacy_reshape_applies_to_synthetic_data():
  config = config_lib.TrainConfig(dataset="synthetic", synthetic_train_size=30,
                                  synthetic_test_size=10,
                                  data_layout="legacy_reshape")
  scrambled = sources.load(config)
  clean = data.synthetic(30, 10, seed=0)
  for split in ("train", "test"):
    expected = data.chw_rows_to_images(
        data.images_to_chw_rows(getattr(clean, f"{split}_images")),
        "legacy_reshape")
    np.testing.assert_array_equal(getattr(scrambled, f"{split}_images"),
                                  expected)
    assert not np.array_equal(expected, getattr(clean, f"{split}_images"))
  np.testing.assert_array_equal(scrambled.train_labels, clean.train_labels)
  # images_to_chw_rows is the exact inverse of the correct layout.
  np.testing.assert_array_equal(
      data.chw_rows_to_images(data.images_to_chw_rows(clean.train_images)),
      clean.train_images)


def test_chw_rows_to_images_by_hand_index():
  rows = np.random.default_rng(0).integers(0, 256, (2, 3072), dtype=np.uint8)
  nhwc = data.chw_rows_to_images(rows, "nhwc")
  legacy = data.chw_rows_to_images(rows, "legacy_reshape")
  for n, y, x, c in [(0, 0, 0, 0), (1, 31, 0, 2), (0, 5, 17, 1),
                     (1, 31, 31, 2)]:
    assert nhwc[n, y, x, c] == rows[n, c * 1024 + y * 32 + x]
    assert legacy[n, y, x, c] == rows[n, (y * 32 + x) * 3 + c]
  with pytest.raises(ValueError) as error:
    data.chw_rows_to_images(rows, "nchw")
  assert str(error.value) == (
      "layout must be one of ('nhwc', 'legacy_reshape'), not 'nchw'.")
  with pytest.raises(ValueError, match="^layout must be one of"):
    cifar10.load_cifar10(None, "/nonexistent", layout="NHWC")


def test_names_are_the_official_archives():
  # From the CIFAR-10 page (www.cs.toronto.edu/~kriz/cifar.html), by hand:
  # the download address, the folder's files, and batches.meta's label
  # names in label order (label 6 is the frog of training image 0).
  assert urllib.parse.urlsplit(data.CIFAR10_URL)[:3] == (
      "https", "www.cs.toronto.edu", "/~kriz/cifar-10-python.tar.gz")
  assert data.CLASS_NAMES == ("airplane", "automobile", "bird", "cat", "deer",
                              "dog", "frog", "horse", "ship", "truck")
  assert data.BATCHES_DIRNAME == "cifar-10-batches-py"
  assert data.REQUIRED_FILES == (
      "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
      "data_batch_5", "test_batch", "batches.meta")


def test_a_dataset_is_frozen_and_equal_only_to_itself():
  dataset = data.synthetic(num_train=4, num_test=2)
  with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
    dataset.train_labels = dataset.test_labels
  # Field-by-field == would compare arrays, whose truth value is ambiguous.
  twin = data.Dataset(dataset.train_images, dataset.train_labels,
                      dataset.test_images, dataset.test_labels,
                      dataset.class_names)
  assert dataset == dataset and dataset != twin


# ---------------------------------------------------------------------------
# Where CIFAR-10 is found.


@pytest.mark.parametrize("form", ["archive_file", "folder_with_archive",
                                  "folder_with_batches", "batches_folder"])
def test_data_dir_forms(tmp_path, form):
  user = tmp_path / "user"
  if form in ("archive_file", "folder_with_archive"):
    archive, expected = cifar_fixtures.write_cifar_archive(user, seed=1)
    data_dir = archive if form == "archive_file" else user
  else:
    batches, expected = cifar_fixtures.write_batches_folder(user, seed=1)
    data_dir = batches if form == "batches_folder" else user
  cache = tmp_path / "cache"
  _assert_same(_load(data_dir, cache), expected)
  # A user's archive is unpacked privately and not kept; the user's files stay.
  assert cifar_fixtures.leftover_files(cache) == []
  assert os.path.exists(data_dir)


def test_data_dir_without_cifar_is_an_error_and_does_not_download(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  _, expected = cifar_fixtures.write_cifar_archive(tmp_path / "served")
  with cifar_fixtures.loopback_server({}) as server:
    with pytest.raises(data.DataError,
                       match=r"Found no CIFAR-10 in --data_dir=.*empty; point "
                       r"it at a folder holding cifar-10-batches-py/ or "
                       r"cifar-10-python\.tar\.gz"):
      _load(empty, tmp_path / "cache", data_url=server.url("/c.tar.gz"))
    with pytest.raises(data.DataError, match="Found no CIFAR-10"):
      _load(tmp_path / "does_not_exist", tmp_path / "cache",
            data_url=server.url("/c.tar.gz"))
    assert server.requested_paths == []
  assert cifar_fixtures.leftover_files(tmp_path / "cache") == []


def test_batches_folder_missing_a_file(tmp_path):
  batches, _ = cifar_fixtures.write_batches_folder(tmp_path / "user")
  os.remove(os.path.join(batches, "test_batch"))
  with pytest.raises(data.DataError,
                     match=r"cifar-10-batches-py has no test_batch; a CIFAR-10 "
                     r"folder holds data_batch_1\.\.5"):
    _load(batches, tmp_path / "cache")


def test_search_order_data_dir_then_cache_then_keras(tmp_path):
  user, cache, keras = (str(tmp_path / name)
                        for name in ("user", "cache", "keras"))
  _, from_data_dir = cifar_fixtures.write_cifar_archive(user, seed=1)
  _, from_cache = cifar_fixtures.write_batches_folder(cache, seed=2)
  _, from_keras = cifar_fixtures.write_batches_folder(keras, seed=3)
  _assert_same(_load(user, cache, keras_cache_dir=keras), from_data_dir)
  _assert_same(_load(None, cache, keras_cache_dir=keras), from_cache)
  _assert_same(_load(None, tmp_path / "empty_cache", keras_cache_dir=keras),
               from_keras)
  assert not (tmp_path / "empty_cache").exists()  # Nothing written for Keras's.


def test_keras3_cache_location(tmp_path):
  keras = tmp_path / "keras"
  _, expected = cifar_fixtures.write_batches_folder(
      keras / "cifar-10-batches-py-target", seed=4)
  _assert_same(_load(None, tmp_path / "cache", keras_cache_dir=str(keras)),
               expected)


def test_cache_archive_is_unpacked_once_and_kept(tmp_path):
  cache = tmp_path / "cache"
  _, expected = cifar_fixtures.write_cifar_archive(cache, seed=5)
  _assert_same(_load(None, cache), expected)
  assert cifar_fixtures.leftover_files(cache) == sorted(
      ["cifar-10-python.tar.gz", "cifar-10-batches-py"]
      + [f"cifar-10-batches-py/{name}" for name in data.REQUIRED_FILES])
  # Second call: the unpacked batches suffice.
  os.remove(cache / "cifar-10-python.tar.gz")
  _assert_same(_load(None, cache), expected)


def test_download_then_cache_without_network(tmp_path):
  archive, expected = cifar_fixtures.write_cifar_archive(tmp_path / "served",
                                                        seed=6)
  payload = pathlib.Path(archive).read_bytes()
  cache = tmp_path / "cache"
  with cifar_fixtures.loopback_server({"/c.tar.gz": Route(payload)}) as server:
    dataset = _load(None, cache, data_url=server.url("/c.tar.gz"),
                    expected_sha256=cifar_fixtures.sha256_of(payload))
    assert server.requested_paths == ["/c.tar.gz"]
  _assert_same(dataset, expected)
  assert "cifar-10-python.tar.gz" in os.listdir(cache)
  assert not [name for name in os.listdir(cache) if name.startswith(".")
              or name.endswith(".part")]
  # The server is gone and the URL refuses connections: the cache must answer.
  _assert_same(_load(None, cache, data_url=cifar_fixtures.closed_port_url()),
               expected)


# ---------------------------------------------------------------------------
# Bad archives and batches: a clear DataError, nothing left in the cache.


def _bad_archive(tmp_path, kind):
  """Writes an archive that is bad in one way; returns (path, match regex)."""
  files, _ = cifar_fixtures.official_members()
  path = str(tmp_path / "user" / "cifar-10-python.tar.gz")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  batch_1 = "cifar-10-batches-py/data_batch_1"
  symlinks = ()
  if kind == "corrupt":
    with open(path, "wb") as f:
      f.write(os.urandom(4096))
    return path, r"Could not unpack .*; it is damaged or incomplete"
  if kind == "truncated":
    cifar_fixtures.write_tar_gz(path, files)
    payload = pathlib.Path(path).read_bytes()
    with open(path, "wb") as f:
      f.write(payload[:len(payload) // 2])
    return path, r"Could not unpack .*; it is damaged or incomplete"
  if kind == "path_traversal":
    files["cifar-10-batches-py/../../escaped"] = b"boom"
    match = r"contains the unsafe path 'cifar-10-batches-py/\.\./\.\./escaped'"
  elif kind == "absolute_path":
    files[str(tmp_path / "escaped")] = b"boom"
    match = r"contains the unsafe path '/"
  elif kind == "symlink":
    del files[batch_1]
    symlinks = ((batch_1, "/etc/passwd"),)
    match = r"contains the link 'cifar-10-batches-py/data_batch_1'"
  elif kind == "missing_member":
    del files["cifar-10-batches-py/test_batch"]
    match = r"lacks test_batch under cifar-10-batches-py/"
  elif kind == "wrong_shape":
    files[batch_1] = files[batch_1].replace(b"K\x03M\x00\x0c\x86",
                                            b"K\x06M\x00\x06\x86", 1)
    match = r"data_batch_1 holds data of shape \(6, 1536\)"
  elif kind == "label_out_of_range":
    files[batch_1] = cifar_writer.encode_batch(
        np.zeros((3, 3072), np.uint8), [0, 1, 12])
    match = r"data_batch_1 has label 12 at index 2, outside 0\.\.9"
  elif kind == "os_system_gadget":
    marker = tmp_path / "gadget_ran"
    files[batch_1] = cifar_fixtures.os_system_gadget(
        f"touch {shlex.quote(str(marker))}")
    match = r"data_batch_1 is not a CIFAR-10 batch and may be malicious"
  elif kind == "garbled_pickle":
    files[batch_1] = files[batch_1][:200]
    match = r"data_batch_1 is not a readable CIFAR-10 batch \(truncated"
  cifar_fixtures.write_tar_gz(path, files, symlinks=symlinks)
  return path, match


BAD_KINDS = ["corrupt", "truncated", "path_traversal", "absolute_path",
             "symlink", "missing_member", "wrong_shape", "label_out_of_range",
             "os_system_gadget", "garbled_pickle"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_archive_in_data_dir(tmp_path, kind):
  archive, match = _bad_archive(tmp_path, kind)
  cache = tmp_path / "cache"
  with pytest.raises(data.DataError, match=match):
    _load(os.path.dirname(archive), cache)
  assert cifar_fixtures.leftover_files(cache) == []
  assert os.path.exists(archive)  # The user's file is never deleted.
  assert not (tmp_path / "escaped").exists()
  assert not (tmp_path / "gadget_ran").exists()


@pytest.mark.parametrize("kind", ["corrupt", "symlink", "label_out_of_range",
                                  "os_system_gadget"])
def test_bad_archive_in_cache_is_deleted(tmp_path, kind):
  archive, match = _bad_archive(tmp_path, kind)
  cache = tmp_path / "cache"
  cache.mkdir()
  os.replace(archive, cache / "cifar-10-python.tar.gz")
  with pytest.raises(data.DataError, match=match):
    _load(None, cache)
  assert cifar_fixtures.leftover_files(cache) == []
  assert not (tmp_path / "gadget_ran").exists()


@pytest.mark.parametrize("kind",
                         ["truncated", "wrong_shape", "os_system_gadget"])
def test_bad_downloaded_archive_with_the_expected_checksum_is_kept(tmp_path,
                                                                   kind):
  # Only a failed checksum condemns an archive (issue 12): this one has the
  # checksum it was downloaded for, so a new download would be the same file.
  # (With the official checksum, which the program always uses, a bad
  # archive is deleted: test_bad_archive_in_cache_is_deleted.)
  archive, match = _bad_archive(tmp_path, kind)
  payload = pathlib.Path(archive).read_bytes()
  cache = tmp_path / "cache"
  with cifar_fixtures.loopback_server({"/c.tar.gz": Route(payload)}) as server:
    with pytest.raises(data.DataError, match=match):
      _load(None, cache, data_url=server.url("/c.tar.gz"),
            expected_sha256=cifar_fixtures.sha256_of(payload))
  assert cifar_fixtures.leftover_files(cache) == ["cifar-10-python.tar.gz"]


def test_unexpected_members_are_not_extracted(tmp_path):
  files, expected = cifar_fixtures.official_members()
  files["cifar-10-batches-py/readme.html"] = b"<html></html>"
  files["cifar-10-batches-py/._data_batch_1"] = b"macOS resource fork"
  files["elsewhere.txt"] = b"not ours"
  cache = tmp_path / "cache"
  cache.mkdir()
  cifar_fixtures.write_tar_gz(str(cache / "cifar-10-python.tar.gz"), files)
  _assert_same(_load(None, cache), expected)
  extracted = sorted(os.listdir(cache / "cifar-10-batches-py"))
  assert extracted == sorted(data.REQUIRED_FILES + ("readme.html",))
  assert not (cache / "elsewhere.txt").exists()


def test_archive_members_may_start_with_dot_slash(tmp_path):
  files, expected = cifar_fixtures.official_members()
  files = {"./" + name: payload for name, payload in files.items()}
  archive = str(tmp_path / "cifar-10-python.tar.gz")
  cifar_fixtures.write_tar_gz(archive, files,
                              directories=("./cifar-10-batches-py",))
  with tarfile.open(archive) as tar:
    assert tar.getnames()[1].startswith("./")
  _assert_same(_load(archive, tmp_path / "cache"), expected)


# ---------------------------------------------------------------------------
# synthetic().


def test_synthetic_is_deterministic_and_shaped_like_cifar():
  first = data.synthetic(num_train=300, num_test=50, seed=3)
  again = data.synthetic(num_train=300, num_test=50, seed=3)
  other = data.synthetic(num_train=300, num_test=50, seed=4)
  for name in ("train_images", "train_labels", "test_images", "test_labels"):
    np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
  assert not np.array_equal(first.train_images, other.train_images)
  assert first.train_images.shape == (300, 32, 32, 3)
  assert first.test_images.shape == (50, 32, 32, 3)
  assert first.train_images.dtype == np.uint8
  assert first.train_labels.dtype == first.test_labels.dtype == np.int32
  assert first.class_names == tuple(f"class_{k}" for k in range(10))
  assert first.num_classes == 10


def test_synthetic_is_the_data_the_readmes_quick_run_was_measured_on():
  # README "Learn in ten minutes" and the walkthrough print accuracies of
  # runs on synthetic(2000, 500, seed=0): any change to the generator (a
  # constant, a distribution, the order of the draws) changes those
  # numbers, so it must come with new ones. Same digest with numpy 1.26.4
  # and 2.4.6 (numpy keeps Generator streams stable across versions).
  dataset = data.synthetic(num_train=2000, num_test=500, seed=0)
  digest = hashlib.sha256()
  for array in (dataset.train_images, dataset.train_labels,
                dataset.test_images, dataset.test_labels):
    digest.update(np.ascontiguousarray(array).tobytes())
  assert digest.hexdigest() == (
      "4626e814af03578ecdde10a7a0d2f43f209fd1e8e4ad0819634fb2361bba2a1a"), (
          "data.synthetic() changed: re-measure the README's synthetic runs "
          "and the walkthrough, then update this digest.")


def test_synthetic_defaults_are_the_programs():
  # `data.synthetic()` is what `--dataset=synthetic` loads with default flags.
  defaults = config_lib.TrainConfig()
  _assert_same(data.synthetic(),
               data.synthetic(defaults.synthetic_train_size,
                              defaults.synthetic_test_size,
                              seed=defaults.seed))


@pytest.mark.parametrize("num_train", [5000, 1003])
def test_synthetic_classes_are_balanced(num_train):
  dataset = data.synthetic(num_train=num_train, num_test=20, seed=0)
  counts = np.bincount(dataset.train_labels, minlength=10)
  assert counts.max() - counts.min() <= 1
  assert counts.sum() == num_train
  assert np.bincount(dataset.test_labels, minlength=10).tolist() == [2] * 10


def test_synthetic_is_learnable_but_not_from_one_pixel():
  dataset = data.synthetic(num_train=2000, num_test=500, seed=0)
  train = dataset.train_images.reshape(2000, -1).astype(np.float32)
  test = dataset.test_images.reshape(500, -1).astype(np.float32)
  means = np.stack([train[dataset.train_labels == k].mean(0)
                    for k in range(10)])
  # The whole picture: nearest class mean is right except on the 20% of
  # images that show another class's pattern (ceiling 0.8 + 0.2 / 10).
  distances = ((test[:, None, :] - means[None]) ** 2).sum(-1)
  assert 0.75 < (distances.argmin(1) == dataset.test_labels).mean() < 0.87
  # One value alone: nearest class mean on the best single (pixel, channel).
  single = np.abs(test[:, :, None] - means.T[None])  # (500, 3072, 10)
  accuracy = (single.argmin(2) == dataset.test_labels[:, None]).mean(0)
  assert accuracy.max() < 0.4  # Chance is 0.1.
