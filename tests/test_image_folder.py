"""Tests of tf_raw/image_folder.py: your own images as train/<class>/ folders.

The images are written by the test with tf.io.encode_png (lossless, so every
decoded pixel is known; see tests/image_fixtures.py) and tf.io.encode_jpeg;
each carries unique random pixels, so a loaded image can be traced back to
the file it came from.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests import image_fixtures
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import sources
from tf_raw.sources import image_folder

CLASSES = image_fixtures.CLASSES
write_folder = image_fixtures.write_image_folder
_write = image_fixtures.write_image


def _origins(images, labels, written):
  """[(split, label of the file), label loaded] for every loaded image."""
  return [(written[image.tobytes()], int(label))
          for image, label in zip(images, labels)]


def test_pngs_load_exactly_with_classes_from_folder_names(tmp_path):
  written = write_folder(tmp_path)
  dataset = image_folder.load(str(tmp_path), cache_dir=None)
  assert dataset.class_names == CLASSES
  assert dataset.train_images.shape == (12, 32, 32, 3)
  assert dataset.train_images.dtype == np.uint8
  assert dataset.train_labels.dtype == np.int32
  assert dataset.test_images.shape == (6, 32, 32, 3)
  for (split, label), loaded_label in _origins(
      dataset.train_images, dataset.train_labels, written):
    assert (split, label) == ("train", loaded_label)
  for (split, label), loaded_label in _origins(
      dataset.test_images, dataset.test_labels, written):
    assert (split, label) == ("test", loaded_label)
  # The training order mixes the classes (for --noshuffle).
  assert list(dataset.train_labels) != sorted(dataset.train_labels)


def test_other_sizes_greyscale_and_jpeg_become_32x32_rgb(tmp_path):
  write_folder(tmp_path, per_class=1, with_test=False)
  train = tmp_path / "train"
  # A constant colour stays that colour under antialiased resizing.
  _write(str(train / "cat" / "big.png"), np.full((48, 40, 3), [200, 10, 90],
                                                 np.uint8))
  grey = np.arange(32 * 32, dtype=np.uint32).reshape(32, 32, 1) % 251
  _write(str(train / "dog" / "grey.png"), grey.astype(np.uint8))
  _write(str(train / "frog" / "flat.jpg"),
         np.full((32, 32, 3), 128, np.uint8), tf.io.encode_jpeg)
  dataset = image_folder.load(str(tmp_path), validation_split=0.5,
                              cache_dir=None)
  images = np.concatenate([dataset.train_images, dataset.test_images])

  def count_equal(expected):
    return sum(np.array_equal(image, expected) for image in images)
  assert count_equal(np.full((32, 32, 3), [200, 10, 90])) == 1
  assert count_equal(np.repeat(grey.astype(np.uint8), 3, axis=2)) == 1
  # JPEG is lossy, but a flat grey survives within one level.
  assert sum(np.abs(image.astype(int) - 128).max() <= 1
             for image in images) == 1


def test_validation_split_is_stratified_seeded_and_disjoint(tmp_path):
  written = write_folder(tmp_path, per_class=10, with_test=False)
  first = image_folder.load(str(tmp_path), validation_split=0.2,
                            cache_dir=None)
  again = image_folder.load(str(tmp_path), validation_split=0.2,
                            cache_dir=None)
  np.testing.assert_array_equal(first.test_images, again.test_images)
  np.testing.assert_array_equal(first.train_images, again.train_images)
  assert np.bincount(first.test_labels).tolist() == [2, 2, 2]
  assert np.bincount(first.train_labels).tolist() == [8, 8, 8]
  held_out = {image.tobytes() for image in first.test_images}
  kept = {image.tobytes() for image in first.train_images}
  assert not held_out & kept
  assert held_out | kept == set(written)
  for (_, label), loaded_label in _origins(
      first.test_images, first.test_labels, written):
    assert label == loaded_label


def test_decoded_images_are_cached_by_fingerprint(tmp_path, monkeypatch):
  write_folder(tmp_path / "images", per_class=2)
  cache = tmp_path / "cache"
  first = image_folder.load(str(tmp_path / "images"), cache_dir=str(cache))
  cached = sorted(os.listdir(cache / image_folder.CACHE_SUBDIR))
  assert len(cached) == 1 and cached[0].endswith(".npz")  # No temp files.

  def no_decoding(paths):
    raise AssertionError(f"decoded {len(paths)} files again")
  monkeypatch.setattr(image_folder, "_decode_files", no_decoding)
  second = image_folder.load(str(tmp_path / "images"), cache_dir=str(cache))
  np.testing.assert_array_equal(first.train_images, second.train_images)
  np.testing.assert_array_equal(first.test_labels, second.test_labels)
  # Editing a file (a new modification time) changes the fingerprint.
  os.utime(tmp_path / "images" / "train" / "dog" / "0.png", ns=(0, 0))
  with pytest.raises(AssertionError, match="decoded 12 files"):
    image_folder.load(str(tmp_path / "images"), cache_dir=str(cache))


def test_a_non_image_file_is_an_error_naming_it(tmp_path):
  write_folder(tmp_path, per_class=2)
  (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")  # Ignored.
  notes = tmp_path / "train" / "dog" / "notes.txt"
  notes.write_text("not a picture")
  with pytest.raises(data.DataError, match=r"notes\.txt is not a readable "
                     r"image .*remove it"):
    image_folder.load(str(tmp_path), cache_dir=None)
  notes.unlink()
  assert len(image_folder.load(str(tmp_path), cache_dir=None)
             .train_labels) == 6


@pytest.mark.parametrize("make_mistake, message", [
    (lambda root: os.makedirs(root / "test" / "horse"), "'horse', which train"),
    (lambda root: os.makedirs(root / "train" / "empty"), "empty holds no"),
])
def test_folder_mistakes_are_one_sentence(tmp_path, make_mistake, message):
  write_folder(tmp_path, per_class=1)
  make_mistake(tmp_path)
  with pytest.raises(data.DataError, match=message):
    image_folder.load(str(tmp_path), cache_dir=None)


def test_no_test_folder_needs_a_validation_split(tmp_path):
  write_folder(tmp_path, per_class=2, with_test=False)
  with pytest.raises(data.DataError, match="no test/ folder"):
    image_folder.load(str(tmp_path), validation_split=0.0, cache_dir=None)


def test_data_load_dispatches_a_folder_of_class_folders(tmp_path):
  write_folder(tmp_path / "mine", per_class=2)
  config = config_lib.TrainConfig(data_dir=str(tmp_path / "mine"),
                                  cache_dir=str(tmp_path / "cache"))
  dataset = sources.load(config)
  assert dataset.class_names == CLASSES
  assert len(dataset.train_labels) == 6 and len(dataset.test_labels) == 6
