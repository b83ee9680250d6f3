"""Every bad input a user can give `python -m tf_raw.train`, and its answer.

Each case must end in one line on stderr (TensorFlow's own C++ start-up lines
aside) that says what is wrong, a non-zero exit, no traceback, and nothing
written anywhere: the case's whole folder (data, --model_dir, --cache_dir)
is compared before and after.

Four tables:

* FLAG_CASES: out-of-range, malformed or unknown flags, through the real
  program (they fail while parsing flags, before TensorFlow is imported, so
  each costs about a second). Exit status 2.
* DATA_CASES: broken CIFAR-10 folders and archives, and image folders
  (`--data_dir=<folder of train/<class>/ images>`), checked in-process
  through `sources.load(config)`, the very function the program calls.
* CLI_DATA_CASES: a few of those through the real program, plus the ones
  only a subprocess can show (a file unreadable to a normal user). Exit 1.
* RUN_DIR_CASES: an unusable --model_dir (read-only, a file, another run's
  settings), through the real program. Exit 1.

The subprocess cases run a few at a time (see `cli_results`).
"""

import concurrent.futures
import dataclasses
import os
import pickle
import re
import shutil
import stat
import tempfile
from typing import Callable

import numpy as np
import pytest

from tests import cifar_fixtures
from tests import cli_fixtures
from tests import image_fixtures
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import sources
from tf_raw.sources import cifar10

BATCHES = data.BATCHES_DIRNAME
PROGRAM = "python -m tf_raw.train: error: "
SEE_HELP = " See --helpfull for every flag."

# ---------------------------------------------------------------------------
# Flags. (flag value, the message after "flag --name=value: ").

FLAG_CASES = [
    ("--dataset=imagenet", "value should be one of <cifar10|synthetic>."),
    ("--data_dir={case}/nowhere",
     "--data_dir must be an existing folder holding cifar-10-batches-py/ or "
     "cifar-10-python.tar.gz (or that archive itself), or train/<class>/ "
     "image folders."),
    ("--data_url=ftp://127.0.0.1/c.tar.gz",
     "--data_url must be an http:// or https:// URL with a host name."),
    ("--data_layout=nchw", "value should be one of <nhwc|legacy_reshape>."),
    ("--synthetic_train_size=0",
     "0 is not an integer in the range [1, 100000]."),
    ("--synthetic_train_size=100001",
     "100001 is not an integer in the range [1, 100000]."),
    ("--synthetic_test_size=0", "0 is not an integer in the range [1, 100000]."),
    ("--epochs=-1", "-1 is not a non-negative integer."),
    ("--epochs=ten", "invalid literal for int() with base 10: 'ten'."),
    ("--batch_size=0", "0 is not a positive integer."),
    ("--learning_rate=-0.001", "-0.001 is not a non-negative number."),
    ("--learning_rate=nan", "--learning_rate must be a finite number."),
    ("--learning_rate=inf", "--learning_rate must be a finite number."),
    ("--decay=1.0", "--decay must be below 1 (0.9 is usual)."),
    ("--decay=-0.1", "-0.1 is not a number in the range [0.0, 1.0]."),
    ("--decay=nan", "--decay must be a finite number."),
    ("--momentum=1.0", "--momentum must be below 1."),
    ("--epsilon=-1e-10", "-1e-10 is not a non-negative number."),
    ("--epsilon=nan", "--epsilon must be a finite number."),
    ("--keep_prob_conv=0.0", "--keep_prob_conv must be in (0, 1]: it is a "
     "keep probability, not a drop rate."),
    ("--keep_prob_conv=1.2", "--keep_prob_conv must be in (0, 1]: it is a "
     "keep probability, not a drop rate."),
    ("--keep_prob_hidden=0.0", "--keep_prob_hidden must be in (0, 1]: it is "
     "a keep probability, not a drop rate."),
    ("--init_stddev=-0.01", "-0.01 is not a non-negative number."),
    ("--init_stddev=inf", "--init_stddev must be a finite number."),
    ("--ema_decay=1.0", "--ema_decay must be below 1 (0.999 averages over "
     "about 1,000 steps; 0 turns averaging off)."),
    ("--ema_decay=-0.1", "-0.1 is not a number in the range [0.0, 1.0]."),
    ("--ema_decay=nan", "--ema_decay must be a finite number."),
    ("--validation_split=1.5", "1.5 is not a number in the range [0.0, 1.0]."),
    ("--validation_split=nan", "--validation_split must be a finite number."),
    ("--seed=-1", "-1 is not an integer in the range [0, 9223372036854775807]."),
    ("--seed=9223372036854775808", "9223372036854775808 is not an integer in "
     "the range [0, 9223372036854775807]."),
    ("--shuffle=maybe", "'maybe' is not true or false."),
    ("--step_log=sometimes", "'sometimes' is not true or false."),
    ("--eval_every=0", "0 is not a positive integer."),
    ("--eval_batch_size=0", "0 is not a positive integer."),
    ("--model_dir=", "--model_dir must name a folder (it is empty)."),
    ("--cache_dir=", "--cache_dir must name a folder (it is empty)."),
    ("--checkpoint_every_steps=-5", "-5 is not a non-negative integer."),
    ("--max_to_keep=0", "0 is not a positive integer."),
    ("--log_every_steps=-1", "-1 is not a non-negative integer."),
    ("--api=v3", "value should be one of <v2|v1>."),
    ("--augment=mixup", "value should be one of <none|crop_flip>."),
    ("--lr_schedule=step", "value should be one of <constant|cosine>."),
    ("--strategy=tpu",
     "value should be one of <default|mirrored|multi_worker>."),
    ("--replicas=0", "0 is not a positive integer."),
    ("--collective_timeout=-1", "-1.0 is not a non-negative number."),
]
OTHER_USAGE_CASES = [  # (arguments, the whole error line).
    (["--learning_rat=0.1"], PROGRAM + "Unknown command line flag "
     "'learning_rat'. Did you mean: learning_rate?" + SEE_HELP),
    (["--epochs=5", "extra"], PROGRAM + "unexpected argument(s) 'extra'; "
     "every setting is a --flag=value (see --helpfull)."),
    (["--api=v1", "--augment=crop_flip"], PROGRAM + "flags api=v1, "
     "augment=crop_flip, lr_schedule=constant: --api=v1 trains the notebook's "
     "TF1 graph, which has no --augment or --lr_schedule; leave them at none "
     "and constant, or use --api=v2." + SEE_HELP),
    (["--replicas=2"], PROGRAM + "flags strategy=default, replicas=2: "
     "--replicas is the number of mirrored replicas; add --strategy=mirrored, "
     "or drop --replicas (multi_worker takes one replica per worker)."
     + SEE_HELP),
    (["--api=v1", "--strategy=mirrored"], PROGRAM + "flags api=v1, "
     "strategy=mirrored: --api=v1 runs the notebook's TF1 graph on one "
     "device; drop --strategy or use --api=v2." + SEE_HELP),
]


# ---------------------------------------------------------------------------
# Data. Each builder makes the bad data under `folder` and returns what to
# pass as --data_dir (None: search the cache, then download).


def _batches(folder):
  batches, _ = cifar_fixtures.write_batches_folder(folder)
  return batches


def _with_batch_file(name, payload):
  def build(folder):
    batches = _batches(folder)
    with open(os.path.join(batches, name), "wb") as f:
      f.write(payload(os.path.join(batches, name)))
    return folder
  return build


def _python3_pickle(value):
  """A batch written by Python 3 (protocol 4): readable, but not CIFAR's."""
  return lambda path: pickle.dumps(value, protocol=4)


def _batch(data_rows, labels):
  return {b"batch_label": b"training batch 1 of 5", b"labels": labels,
          b"data": data_rows}


def _without(name):
  def build(folder):
    os.remove(os.path.join(_batches(folder), name))
    return folder
  return build


def _truncated(path):
  with open(path, "rb") as f:
    payload = f.read()
  return payload[:len(payload) // 2]


def _gadget(path):
  marker = os.path.join(os.path.dirname(path), "..", "gadget_ran")
  return cifar_fixtures.os_system_gadget(f"touch {marker}")


def _archive(change):
  """folder/cifar-10-python.tar.gz: the official members, changed.

  `change(files, folder)` edits the {member name: bytes} dict in place and
  may return write_tar_gz keyword arguments, or {"raw": fn(files) -> bytes}
  for a file that is not a tar.gz at all.
  """
  def build(folder):
    files, _ = cifar_fixtures.official_members()
    extra = change(files, folder) or {}
    path = os.path.join(folder, cifar10.ARCHIVE_NAME)
    if "raw" in extra:
      with open(path, "wb") as f:
        f.write(extra["raw"](files))
    else:
      cifar_fixtures.write_tar_gz(path, files, **extra)
    return folder
  return build


def _replaced_by(name, **links_or_folders):
  """Drops member `name`, then adds what the keyword arguments say instead."""
  def change(files, folder):
    del files[f"{BATCHES}/{name}"]
    return links_or_folders
  return change


def _add(name, payload=lambda folder: b"boom"):
  def change(files, folder):
    files[name] = payload(folder)
  return change


def _tar_truncated(files):
  with tempfile.TemporaryDirectory() as staging:
    path = os.path.join(staging, "a.tar.gz")
    cifar_fixtures.write_tar_gz(path, files)
    with open(path, "rb") as f:
      payload = f.read()
  return payload[:len(payload) // 2]


def _image_folder(change=None):
  """folder/images/{train,test}/<class>/*.png, then `change(images folder)`."""
  def build(folder):
    images = os.path.join(folder, "images")
    image_fixtures.write_image_folder(images, per_class=2)
    if change:
      change(images)
    return images
  return build


def _write_file(relative_path, payload):
  def change(images):
    with open(os.path.join(images, relative_path), "wb") as f:
      f.write(payload)
  return change


def _without_test(images):
  shutil.rmtree(os.path.join(images, "test"))


def _truncated_png(images):
  path = os.path.join(images, "train", "cat", "0.png")
  with open(path, "rb") as f:
    payload = f.read()
  with open(path, "wb") as f:
    f.write(payload[:len(payload) // 2])


def _cache_is_a_file(folder):
  with open(os.path.join(folder, "cache"), "w") as f:
    f.write("not a folder")
  return None


ROWS = np.zeros((3, 3072), np.uint8)
DATA_CASES = {
    # id: (builder, the DataError message as a regex; {d} = the data folder).
    "empty_folder": (
        lambda folder: folder,
        r"Found no CIFAR-10 in --data_dir={d}; point it at a folder holding "
        r"cifar-10-batches-py/ or cifar-10-python\.tar\.gz \(or at the "
        r"cifar-10-batches-py folder itself\), or leave it unset to "
        r"download\."),
    "partial_folder_no_test_batch": (
        _without("test_batch"),
        r"{d}/cifar-10-batches-py has no test_batch; a CIFAR-10 folder holds "
        r"data_batch_1\.\.5, test_batch and batches\.meta, so extract "
        r"cifar-10-python\.tar\.gz again or point --data_dir elsewhere\."),
    "partial_folder_no_meta": (
        _without("batches.meta"),
        r"{d}/cifar-10-batches-py has no batches\.meta; a CIFAR-10 folder holds "
        r"data_batch_1\.\.5, test_batch and batches\.meta, so extract "
        r"cifar-10-python\.tar\.gz again or point --data_dir elsewhere\."),
    "truncated_batch": (
        _with_batch_file("data_batch_3", _truncated),
        r"{d}/cifar-10-batches-py/data_batch_3 is not a readable CIFAR-10 "
        r"batch \(truncated or corrupt: EOFError: Ran out of input\), so delete "
        r"it and extract or download CIFAR-10 again\."),
    "empty_batch_file": (
        _with_batch_file("data_batch_1", lambda path: b""),
        r"{d}/cifar-10-batches-py/data_batch_1 is not a readable CIFAR-10 "
        r"batch \(truncated or corrupt: EOFError: Ran out of input\), so delete "
        r"it and extract or download CIFAR-10 again\."),
    "pickle_gadget": (
        _with_batch_file("data_batch_2", _gadget),
        r"{d}/cifar-10-batches-py/data_batch_2 is not a CIFAR-10 batch and may "
        r"be malicious \(its pickle asks to call os\.system\), so delete it "
        r"and get CIFAR-10 from the official archive again\."),
    "pickle_gadget_in_meta": (
        _with_batch_file("batches.meta", _gadget),
        r"{d}/cifar-10-batches-py/batches\.meta is not a CIFAR-10 batch and "
        r"may be malicious \(its pickle asks to call os\.system\), so delete it "
        r"and get CIFAR-10 from the official archive again\."),
    "float_pixels": (
        _with_batch_file("data_batch_1", _python3_pickle(
            _batch(ROWS.astype(np.float32), [0, 1, 2]))),
        r"{d}/cifar-10-batches-py/data_batch_1 holds data of shape \(3, 3072\) "
        r"and type float32, but a CIFAR-10 batch holds uint8 rows of 3072 "
        r"values \(N, 3072\), so rebuild it with "
        r"tf_raw\.tools\.cifar_writer\.write_batch\."),
    "wrong_row_length": (
        _with_batch_file("data_batch_1", _python3_pickle(
            _batch(np.zeros((3, 1024), np.uint8), [0, 1, 2]))),
        r"{d}/cifar-10-batches-py/data_batch_1 holds data of shape \(3, 1024\) "
        r"and type uint8, but a CIFAR-10 batch holds uint8 rows of 3072 values "
        r"\(N, 3072\), so rebuild it with "
        r"tf_raw\.tools\.cifar_writer\.write_batch\."),
    "no_images": (
        _with_batch_file("data_batch_1", _python3_pickle(
            _batch(np.zeros((0, 3072), np.uint8), []))),
        r"{d}/cifar-10-batches-py/data_batch_1 holds data of shape \(0, 3072\) "
        r"and type uint8, but a CIFAR-10 batch holds uint8 rows of 3072 values "
        r"\(N, 3072\), so rebuild it with "
        r"tf_raw\.tools\.cifar_writer\.write_batch\."),
    "label_out_of_range": (
        _with_batch_file("data_batch_4", _python3_pickle(
            _batch(ROWS, [0, 1, 12]))),
        r"{d}/cifar-10-batches-py/data_batch_4 has label 12 at index 2, "
        r"outside 0\.\.9, so the file is corrupt: rebuild it or extract "
        r"CIFAR-10 again\."),
    "negative_label": (
        _with_batch_file("test_batch", _python3_pickle(
            _batch(ROWS, [-1, 0, 1]))),
        r"{d}/cifar-10-batches-py/test_batch has label -1 at index 0, outside "
        r"0\.\.9, so the file is corrupt: rebuild it or extract CIFAR-10 "
        r"again\."),
    "too_few_labels": (
        _with_batch_file("data_batch_1", _python3_pickle(
            _batch(ROWS, [0, 1]))),
        r"{d}/cifar-10-batches-py/data_batch_1 has 3 images but its labels "
        r"are not 3 integers \(got shape \(2,\), type int64\), so rebuild it "
        r"with tf_raw\.tools\.cifar_writer\.write_batch\."),
    "float_labels": (
        _with_batch_file("data_batch_1", _python3_pickle(
            _batch(ROWS, [0.5, 1.0, 2.0]))),
        r"{d}/cifar-10-batches-py/data_batch_1 has 3 images but its labels "
        r"are not 3 integers \(got shape \(3,\), type float64\), so rebuild it "
        r"with tf_raw\.tools\.cifar_writer\.write_batch\."),
    "not_a_dict": (
        _with_batch_file("data_batch_1", _python3_pickle([ROWS, [0, 1, 2]])),
        r"{d}/cifar-10-batches-py/data_batch_1 is not a CIFAR-10 batch "
        r"\(expected a dict with b'data' and b'labels'\), so delete it and "
        r"extract or download CIFAR-10 again\."),
    "meta_without_names": (
        _with_batch_file("batches.meta", _python3_pickle({b"num_vis": 3072})),
        r"{d}/cifar-10-batches-py/batches\.meta is not a CIFAR-10 "
        r"batches\.meta file \(expected b'label_names', a list of names\), "
        r"so rebuild it with tf_raw\.tools\.cifar_writer\.write_meta\."),
    "archive_path_traversal": (
        _archive(_add(f"{BATCHES}/../../escaped")),
        r"{d}/cifar-10-python\.tar\.gz contains the unsafe path "
        r"'cifar-10-batches-py/\.\./\.\./escaped', so it is not the official "
        r"CIFAR-10 archive; delete it and download it again\."),
    "archive_absolute_path": (
        _archive(lambda files, folder: files.update(
            {f"{folder}/escaped": b"boom"})),
        r"{d}/cifar-10-python\.tar\.gz contains the unsafe path "
        r"'{d}/escaped', so it is not the official CIFAR-10 archive; delete it "
        r"and download it again\."),
    "archive_symlink": (
        _archive(_replaced_by("data_batch_1", symlinks=[
            (f"{BATCHES}/data_batch_1", "/etc/passwd")])),
        r"{d}/cifar-10-python\.tar\.gz contains the link "
        r"'cifar-10-batches-py/data_batch_1', so it is not the official "
        r"CIFAR-10 archive; delete it and download it again\."),
    "archive_hard_link": (
        _archive(_replaced_by("data_batch_1", hardlinks=[
            (f"{BATCHES}/data_batch_1", f"{BATCHES}/data_batch_2")])),
        r"{d}/cifar-10-python\.tar\.gz contains the link "
        r"'cifar-10-batches-py/data_batch_1', so it is not the official "
        r"CIFAR-10 archive; delete it and download it again\."),
    "archive_missing_member": (
        _archive(_replaced_by("test_batch")),
        r"{d}/cifar-10-python\.tar\.gz lacks test_batch under "
        r"cifar-10-batches-py/, so it is not a complete CIFAR-10 python "
        r"archive; download it again\."),
    "archive_member_is_a_folder": (
        _archive(_replaced_by("data_batch_5", directories=[
            BATCHES, f"{BATCHES}/data_batch_5"])),
        r"{d}/cifar-10-python\.tar\.gz holds 'cifar-10-batches-py/"
        r"data_batch_5' as something other than a regular file, so it is not "
        r"the official CIFAR-10 archive; delete it and download it again\."),
    "archive_with_gadget": (
        _archive(_add(f"{BATCHES}/data_batch_1", lambda folder: (
            cifar_fixtures.os_system_gadget(f"touch {folder}/gadget_ran")))),
        # Found while unpacking, in the cache's temporary folder (random name).
        r"{d}/cache/\.unpacking-[a-z0-9_]{{8}}/cifar-10-batches-py/data_batch_1 "
        r"is not a CIFAR-10 batch and may be malicious \(its pickle asks to "
        r"call os\.system\), so delete it and get CIFAR-10 from the official "
        r"archive again\."),
    "archive_not_gzip": (
        _archive(lambda files, folder: {"raw": lambda _: os.urandom(4096)}),
        r"Could not unpack {d}/cifar-10-python\.tar\.gz \(ReadError: not a "
        r"gzip file\); it is damaged or incomplete, so delete it and download "
        r"it again\."),
    "archive_truncated": (
        _archive(lambda files, folder: {"raw": _tar_truncated}),
        r"Could not unpack {d}/cifar-10-python\.tar\.gz \(EOFError: Compressed "
        r"file ended before the end-of-stream marker was reached\); it is "
        r"damaged or incomplete, so delete it and download it again\."),
    "offline_and_nothing_cached": (
        lambda folder: None,
        r"Could not download http://127\.0\.0\.1:\d+/cifar-10-python\.tar\.gz "
        r"\(Connection refused\); download that file elsewhere and pass "
        r"--data_dir=FOLDER, the folder that holds it\."),
    "image_not_an_image": (
        _image_folder(_write_file("train/dog/notes.txt", b"not a picture")),
        r"{d}/images/train/dog/notes\.txt is not a readable image \(JPEG, "
        r"PNG, GIF or BMP\); remove it from the folder or replace it\."),
    "image_truncated_png": (
        _image_folder(_truncated_png),
        r"{d}/images/train/cat/0\.png is not a readable image \(JPEG, PNG, GIF "
        r"or BMP\); remove it from the folder or replace it\."),
    "image_empty_file": (
        _image_folder(_write_file("test/cat/empty.jpg", b"")),
        r"{d}/images/test/cat/empty\.jpg is not a readable image \(JPEG, PNG, "
        r"GIF or BMP\); remove it from the folder or replace it\."),
    "image_test_class_not_in_train": (
        _image_folder(lambda images: os.makedirs(
            os.path.join(images, "test", "horse"))),
        r"{d}/images/test has the class folder 'horse', which train/ lacks; "
        r"every test class needs training images too\."),
    "image_empty_class_folder": (
        _image_folder(lambda images: os.makedirs(
            os.path.join(images, "train", "horse"))),
        r"{d}/images/train/horse holds no images; add some or remove the "
        r"folder\."),
    "image_folder_inside_a_class": (
        _image_folder(lambda images: os.makedirs(
            os.path.join(images, "train", "cat", "more"))),
        r"{d}/images/train/cat/more is a folder, but class folders hold only "
        r"image files; move it out\."),
    "image_empty_test_folder": (
        _image_folder(lambda images: shutil.rmtree(
            os.path.join(images, "test")) or os.makedirs(
                os.path.join(images, "test"))),
        r"{d}/images/test holds no images; add some or remove it to hold out "
        r"part of train/ instead\."),
    "cache_dir_is_a_file": (
        _cache_is_a_file,
        r"Cannot create the cache folder {d}/cache \(File exists\); choose a "
        r"writable one\."),
}


def _data_config(case_folder, data_dir, data_url):
  return config_lib.TrainConfig(
      dataset="cifar10", data_dir=data_dir, data_url=data_url,
      cache_dir=os.path.join(case_folder, "cache"),
      model_dir=os.path.join(case_folder, "run"))


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data(case, tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path))  # Not the real ~/.keras.
  build, expected = DATA_CASES[case]
  folder = str(tmp_path / "case")
  os.makedirs(folder)
  data_dir = build(folder)
  before = cli_fixtures.snapshot(str(tmp_path))
  with pytest.raises(data.DataError) as raised:
    sources.load(_data_config(folder, data_dir, cifar_fixtures.closed_port_url()))
  message = str(raised.value)
  assert "\n" not in message
  assert re.fullmatch(expected.format(d=re.escape(folder)), message), message
  assert cli_fixtures.snapshot(str(tmp_path)) == before  # Nothing written.
  assert not os.path.exists(os.path.join(folder, "gadget_ran"))


def test_batch_larger_than_the_data_with_drop_remainder(tmp_path):
  # pylint: disable=g-import-not-at-top
  from tf_raw import loop
  from tf_raw.run_folder import guard
  config = config_lib.TrainConfig(dataset="synthetic", batch_size=64,
                                  drop_remainder=True,
                                  model_dir=str(tmp_path / "run"))
  with pytest.raises(loop.TrainingError,
                     match=r"^--batch_size=64 is larger than the 50 training "
                     r"images and --drop_remainder is set, so no step would "
                     r"run; lower --batch_size\.$"):
    guard.GuardedTrainer(config, data.synthetic(num_train=50, num_test=10))
  assert not os.path.exists(tmp_path / "run")


# ---------------------------------------------------------------------------
# Through the real program.


@dataclasses.dataclass
class CliCase:
  """One run of the program that must fail.

  Attributes:
    make: builds the case's inputs in its folder; returns the arguments.
    expected: regex of the one error line ({case} = the case's folder).
    status: the exit status.
    enforce_permissions: make read-only mean read-only to the child even
      when the tests run as root (see cli_fixtures.permission_bound_command).
  """
  make: Callable[[str], list]
  expected: str
  status: int = 1
  enforce_permissions: bool = False


def _usual(case):
  return [f"--model_dir={case}/run", f"--cache_dir={case}/cache"]


def _flag_case(flag, message):
  def make(case):  # The bad flag comes last, so it wins over the usual ones.
    return ["--dataset=synthetic"] + _usual(case) + [flag.format(case=case)]
  return CliCase(make, _escape(f"{PROGRAM}flag {flag}: {message}{SEE_HELP}"),
                 status=2)


def _escape(text):
  """A regex matching `text` exactly, its {case} left for str.format."""
  return re.escape(text).replace(r"\{case\}", "{case}")


def _data_cli_case(data_case, **kwargs):
  build, expected = DATA_CASES[data_case]

  def make(case):
    # In case/data: --data_dir and --model_dir (case/run) may not overlap.
    data_folder = os.path.join(case, "data")
    os.makedirs(data_folder)
    return [f"--data_dir={build(data_folder)}"] + _usual(case)
  return CliCase(make, "error: " + expected.replace("{d}", "{case}/data"),
                 **kwargs)


def _unreadable_batch(case):
  data_folder = os.path.join(case, "data")
  batches = _batches(data_folder)
  os.chmod(os.path.join(batches, "data_batch_2"), 0)
  return [f"--data_dir={data_folder}"] + _usual(case)


def _finished_run(case):
  """case/run: a copy of a real finished run (1 step), trained here once."""
  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import guard
  template = os.path.join(os.path.dirname(case), "_template_run")
  if not os.path.exists(template):
    config = config_lib.TrainConfig(
        dataset="synthetic", synthetic_train_size=12, synthetic_test_size=4,
        batch_size=12, epochs=1, print_predictions=False, model_dir=template)
    guard.GuardedTrainer(config, sources.load(config), out=lambda line: None).run()
  shutil.copytree(template, os.path.join(case, "run"))
  return ["--dataset=synthetic", "--synthetic_train_size=12",
          "--synthetic_test_size=4", "--epochs=2",
          f"--model_dir={case}/run", f"--cache_dir={case}/cache"]


def _read_only_run(case):
  args = _finished_run(case)
  for root, _, files in os.walk(os.path.join(case, "run")):
    os.chmod(root, 0o555)
    for name in files:
      os.chmod(os.path.join(root, name), 0o444)
  return args + ["--batch_size=12"]


def _under_read_only_parent(case):
  os.makedirs(os.path.join(case, "locked"))
  os.chmod(os.path.join(case, "locked"), 0o555)
  return ["--dataset=synthetic", f"--model_dir={case}/locked/new/run"]


def _model_dir_is_a_file(case):
  with open(os.path.join(case, "run"), "w") as f:
    f.write("a file")
  return ["--dataset=synthetic", f"--model_dir={case}/run"]


def _model_dir_below_a_file(case):
  with open(os.path.join(case, "file"), "w") as f:
    f.write("a file")
  return ["--dataset=synthetic", f"--model_dir={case}/file/run"]


def _changed_settings(case):
  return _finished_run(case) + ["--batch_size=6", "--seed=7"]


CLI_DATA_CASES = {
    "empty_folder": _data_cli_case("empty_folder"),
    "truncated_batch": _data_cli_case("truncated_batch"),
    "pickle_gadget": _data_cli_case("pickle_gadget"),
    "label_out_of_range": _data_cli_case("label_out_of_range"),
    "archive_path_traversal": _data_cli_case("archive_path_traversal"),
    "archive_symlink": _data_cli_case("archive_symlink"),
    "image_not_an_image": _data_cli_case("image_not_an_image"),
    "image_no_test_folder_and_no_split": CliCase(
        lambda case: [f"--data_dir={_image_folder(_without_test)(case)}",
                      "--validation_split=0"] + _usual(case),
        r"error: {case}/images has no test/ folder, so --validation_split must "
        r"be between 0 and 1 \(got 0\.0\) to hold out images for "
        r"evaluation\."),
    "unreadable_batch": CliCase(
        _unreadable_batch,
        r"error: Could not read {case}/data/cifar-10-batches-py/data_batch_2 "
        r"\(Permission denied\); check that the file exists and is "
        r"readable\.", enforce_permissions=True),
}
RUN_DIR_CASES = {
    "read_only_run": CliCase(
        _read_only_run,
        r"error: --model_dir={case}/run is not writable; choose a folder you "
        r"can write to, or fix its permissions\.", enforce_permissions=True),
    "read_only_parent": CliCase(
        _under_read_only_parent,
        r"error: --model_dir={case}/locked/new/run is not writable \(it would "
        r"be created in {case}/locked\); choose a folder you can write to, or "
        r"fix its permissions\.", enforce_permissions=True),
    "model_dir_is_a_file": CliCase(
        _model_dir_is_a_file,
        r"error: --model_dir={case}/run is a file; choose a folder\."),
    "model_dir_below_a_file": CliCase(
        _model_dir_below_a_file,
        r"error: --model_dir={case}/file/run cannot be created because "
        r"{case}/file is a file; choose a folder\."),
    "changed_settings": CliCase(
        _changed_settings,
        r"error: --model_dir={case}/run holds a run made with other settings "
        r"\(--batch_size=12 there, 6 now; --seed=0 there, 7 now; training data "
        r"with checksum \w+ there, \w+ now \(different images or labels\)\), "
        r"so continuing it would not be the same run; rerun with the original "
        r"values, or use a new --model_dir\."),
}
ALL_CLI_CASES = {
    **{f"flag{index:02d}_{flag.split('=')[0][2:]}": _flag_case(flag, message)
       for index, (flag, message) in enumerate(FLAG_CASES)},
    **{f"usage_{index}": CliCase(
        lambda case, args=args: _usual(case) + args, _escape(line), status=2)
       for index, (args, line) in enumerate(OTHER_USAGE_CASES)},
    **{f"data_{name}": case for name, case in CLI_DATA_CASES.items()},
    **{f"run_dir_{name}": case for name, case in RUN_DIR_CASES.items()},
}


@pytest.fixture(scope="module")
def cli_results(request):
  """Builds the selected CLI cases, runs them six at a time.

  Yields {id: (case folder, CompletedProcess, snapshot before, after)}.
  """
  selected = {item.callspec.params["name"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_cli_rejects"}
  base = tempfile.mkdtemp(prefix="tf_raw_bad_input_")
  prepared = {}
  for name, case in ALL_CLI_CASES.items():
    if name not in selected:
      continue
    folder = os.path.join(base, name)
    os.makedirs(folder)
    command = cli_fixtures.train_command(*case.make(folder))
    if case.enforce_permissions:
      command = cli_fixtures.permission_bound_command(command)
    prepared[name] = (folder, command, cli_fixtures.snapshot(folder))

  def run(name):
    folder, command, before = prepared[name]
    if command is None:
      return name, None
    result = cli_fixtures.run_train(command=command)
    return name, (folder, result, before, cli_fixtures.snapshot(folder))
  with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
    results = dict(pool.map(run, prepared))
  yield results
  for root, dirs, files in os.walk(base):  # Undo the read-only cases.
    for name in dirs + files:
      path = os.path.join(root, name)
      if not os.path.islink(path):
        os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)
  shutil.rmtree(base)


@pytest.mark.parametrize("name", sorted(ALL_CLI_CASES))
def test_cli_rejects(name, cli_results):
  case = ALL_CLI_CASES[name]
  if cli_results[name] is None:
    pytest.skip("root without setpriv: files cannot be made read-only to a "
                "child process")
  folder, result, before, after = cli_results[name]
  lines = cli_fixtures.error_lines(result.stderr)
  assert len(lines) == 1, result.stderr  # One line; no traceback.
  assert re.fullmatch(case.expected.format(case=re.escape(folder)),
                      lines[0]), lines[0]
  assert result.returncode == case.status
  assert result.stdout == ""
  assert after == before  # Nothing written: data, run folder, cache.
