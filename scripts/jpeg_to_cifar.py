r"""Builds a CIFAR-10-format folder from the JPEG re-encoding of the training set.

    python scripts/jpeg_to_cifar.py \
        --archive=../shared/data/cifar10-jpeg-train.tar.gz --out=/work/realdata

reads `train/<class>/NNNN.jpg` (5,000 per class, in CIFAR-10's order within a
class), decodes every JPEG with TensorFlow, and writes

    <out>/cifar-10-batches-py/data_batch_1 .. data_batch_5   8,000 images each
    <out>/cifar-10-batches-py/test_batch                     10,000 images
    <out>/cifar-10-batches-py/batches.meta

in the official byte format (`tf_raw.tools.cifar_writer.write_batch`), rows in
channels-first order exactly as the official batches store them. Images
0000-3999 of each class are the training set, 4000-4999 the test set (the real
CIFAR-10 test images are not in the archive). Each split is put in a fixed
random order (numpy seed --seed), as CIFAR-10 mixes its classes; each image's
origin is kept in the batch's filenames, e.g. "frog_0000.jpg".

Then `python -m tf_raw.train --data_dir=<out>` trains on it. JPEG is lossy, so
pixels differ from the official ones by a few levels: use it to check that
training learns, not to check exact values. Never write the output inside the
repository.
"""

import argparse
import os
import re
import shutil
import sys
import tarfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TF is imported.
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

# A dev script run from anywhere: make the repository importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_raw import data  # pylint: disable=g-import-not-at-top
from tf_raw.tools import cifar_writer  # pylint: disable=g-import-not-at-top

IMAGES_PER_CLASS = 5000
NUM_TRAIN_PER_CLASS = 4000  # 0000-3999 train; 4000-4999 held out as test.
NUM_TRAIN_BATCHES = 5  # 40,000 / 5 = 8,000 images per data_batch_*.
_MEMBER = re.compile(r"^(?:\./)?train/([a-z]+)/(\d{4})\.jpg$")


def read_jpegs(archive):
  """Returns {(class name, index): JPEG bytes} for every train/<class>/NNNN.jpg."""
  jpegs = {}
  with tarfile.open(archive, "r:gz") as tar:
    for member in tar:
      match = _MEMBER.match(member.name)
      if match and member.isfile():
        class_name, index = match.group(1), int(match.group(2))
        jpegs[(class_name, index)] = tar.extractfile(member).read()
  expected = {(name, index) for name in data.CLASS_NAMES
              for index in range(IMAGES_PER_CLASS)}
  missing = expected - set(jpegs)
  if missing:
    sys.exit(f"{archive} lacks {len(missing)} of the expected "
             f"train/<class>/NNNN.jpg files (e.g. {sorted(missing)[0]}); use "
             "the cifar10-jpeg-train.tar.gz archive.")
  return jpegs


def decode_all(jpeg_list):
  """Decodes JPEG bytes in parallel into uint8 (N, 32, 32, 3) RGB images."""
  def decode(jpeg):
    # INTEGER_ACCURATE: libjpeg's default IDCT (what PIL uses), not TF's
    # faster approximation.
    image = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE")
    return tf.ensure_shape(image, (32, 32, 3))
  images = tf.data.Dataset.from_tensor_slices(jpeg_list).map(
      decode, num_parallel_calls=tf.data.AUTOTUNE).batch(5000)
  return np.concatenate([batch.numpy() for batch in images])


def to_rows(images):
  """uint8 (N, 32, 32, 3) HWC -> (N, 3072) rows of three channel planes."""
  return images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # (N, C, H, W)


def write_folder(out, splits):
  """Writes out/cifar-10-batches-py atomically (a temp folder, then rename).

  Args:
    out: parent folder.
    splits: {"train": (images, labels, filenames), "test": (...)}.
  """
  os.makedirs(out, exist_ok=True)
  # Not tempfile.mkdtemp: its folders are private (0700).
  staging = os.path.join(out, f".cifar-10-batches-py-{os.getpid()}")
  os.makedirs(staging)
  train_images, train_labels, train_names = splits["train"]
  per_batch = len(train_images) // NUM_TRAIN_BATCHES
  for batch in range(NUM_TRAIN_BATCHES):
    part = slice(batch * per_batch, (batch + 1) * per_batch)
    cifar_writer.write_batch(
        os.path.join(staging, data.TRAIN_BATCHES[batch]),
        to_rows(train_images[part]), train_labels[part],
        batch_label=f"training batch {batch + 1} of {NUM_TRAIN_BATCHES}",
        filenames=train_names[part])
  test_images, test_labels, test_names = splits["test"]
  cifar_writer.write_batch(
      os.path.join(staging, data.TEST_BATCH), to_rows(test_images),
      test_labels, batch_label="testing batch 1 of 1", filenames=test_names)
  cifar_writer.write_meta(os.path.join(staging, data.META_FILE),
                          num_cases_per_batch=per_batch)
  final = os.path.join(out, data.BATCHES_DIRNAME)
  if os.path.exists(final):
    shutil.rmtree(final)  # Only ever our own earlier output.
  os.rename(staging, final)
  return final


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--archive", required=True,
                      help="cifar10-jpeg-train.tar.gz (train/<class>/NNNN.jpg).")
  parser.add_argument("--out", required=True,
                      help="Folder to create cifar-10-batches-py/ in "
                      "(outside the repository).")
  parser.add_argument("--seed", type=int, default=0,
                      help="numpy seed of the fixed image order.")
  args = parser.parse_args()

  start = time.perf_counter()
  jpegs = read_jpegs(args.archive)
  # Decode in (class, index) order; label = position in CIFAR's class list.
  keys = [(name, index) for name in data.CLASS_NAMES
          for index in range(IMAGES_PER_CLASS)]
  images = decode_all([jpegs[key] for key in keys])  # (50000, 32, 32, 3)
  labels = np.array([data.CLASS_NAMES.index(name) for name, _ in keys],
                    np.int32)
  names = np.array([f"{name}_{index:04d}.jpg" for name, index in keys])
  is_train = np.array([index < NUM_TRAIN_PER_CLASS for _, index in keys])
  decoded_s = time.perf_counter() - start

  rng = np.random.default_rng(args.seed)
  splits = {}
  for split, selected in (("train", is_train), ("test", ~is_train)):
    order = rng.permutation(np.flatnonzero(selected))  # Mix the classes.
    splits[split] = (images[order], labels[order], names[order].tolist())
  folder = write_folder(args.out, splits)
  total_s = time.perf_counter() - start
  print(f"Wrote {folder}: {len(splits['train'][0])} train and "
        f"{len(splits['test'][0])} test images (decoding {decoded_s:.1f} s, "
        f"total {total_s:.1f} s).")


if __name__ == "__main__":
  main()
