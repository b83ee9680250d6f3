"""The 15 defects an adversarial tester found (issue 12), one test each.

Each test names its defect. They run the programs in-process
(tests/program_fixtures.py) unless only a subprocess can show the case (a
signal, a non-root permission check).
"""

import errno
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from tests import cifar_fixtures
from tests import cli_fixtures
from tests import image_fixtures
from tests import program_fixtures
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import sources
from tf_raw import train
from tf_raw.run_folder import run_dir
from tf_raw.sources import cifar10
from tf_raw.sources import image_folder
from tf_raw.tools import export
from tf_raw.tools import predict

TINY = ["--dataset=synthetic", "--synthetic_train_size=32",
        "--synthetic_test_size=16", "--epochs=1", "--batch_size=16",
        "--noshuffle", "--log_every_steps=0", "--checkpoint_every_steps=0",
        "--noprint_predictions", "--eval_every=1"]


def _run(module, *args):
  return program_fixtures.run_program(module, list(args))


def _one_error_line(stderr):
  lines = cli_fixtures.error_lines(stderr)
  assert len(lines) == 1, stderr
  assert "Traceback" not in stderr, stderr
  return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A finished 1-epoch synthetic run (2 steps), shared by several tests."""
  model_dir = tmp_path_factory.mktemp("run") / "run"
  code, stdout, stderr = _run(train, *TINY, f"--model_dir={model_dir}")
  assert code == 0, stdout + stderr
  return model_dir


def _copy_run(tiny_run, tmp_path, name="run"):
  import shutil  # pylint: disable=g-import-not-at-top
  target = tmp_path / name
  shutil.copytree(tiny_run, target)
  return target


# 1 -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x[a]", "x*", "x?"])
def test_1_glob_characters_in_model_dir_are_refused_up_front(tmp_path, name):
  for module, extra in ((train, TINY),
                        (export, [f"--export_dir={tmp_path / 'e'}"]),
                        (predict, [f"--image={tmp_path / 'a.png'}"])):
    code, _, stderr = _run(module, *extra, f"--model_dir={tmp_path / name}")
    assert code == 2, stderr
    assert "glob" in _one_error_line(stderr)
  # And a parent folder with one: the whole path is a pattern to TensorFlow.
  code, _, stderr = _run(train, *TINY,
                         f"--model_dir={tmp_path / name / 'run'}")
  assert code == 2 and "glob" in _one_error_line(stderr)
  assert os.listdir(tmp_path) == []


def test_1_the_library_refuses_a_glob_folder_too(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import checkpoints  # pylint: disable=g-import-not-at-top
  with pytest.raises(checkpoints.CheckpointError, match="glob"):
    checkpoints.CheckpointStore(tf.train.Checkpoint(), str(tmp_path / "x[a]"),
                                max_to_keep=3)


# 2 -------------------------------------------------------------------------


def _fail_writes_with_enospc(monkeypatch):
  def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "x")
  monkeypatch.setattr(tarfile.TarFile, "extractall", no_space)


def test_2_disk_full_while_unpacking_keeps_the_cached_archive(
    tmp_path, monkeypatch):
  archive, _ = cifar_fixtures.write_cifar_archive(str(tmp_path / "cache"))
  with open(archive, "rb") as f:
    sha256 = cifar_fixtures.sha256_of(f.read())
  _fail_writes_with_enospc(monkeypatch)
  with pytest.raises(data.DataError) as raised:
    cifar10.load_cifar10(None, str(tmp_path / "cache"),
                         keras_cache_dir=str(tmp_path / "keras"),
                         expected_sha256=sha256)
  assert os.path.exists(archive)
  assert "No space left on device" in str(raised.value)
  assert "damaged" not in str(raised.value)
  # The user's own archive: kept, and not called damaged either.
  user_archive, _ = cifar_fixtures.write_cifar_archive(str(tmp_path / "mine"))
  with pytest.raises(data.DataError) as raised:
    cifar10.load_cifar10(user_archive, str(tmp_path / "cache2"),
                         keras_cache_dir=str(tmp_path / "keras"))
  assert "delete" not in str(raised.value)
  assert "No space left on device" in str(raised.value)


def test_2_a_cached_archive_with_the_right_checksum_is_never_deleted(
    tmp_path):
  cache = tmp_path / "cache"
  cache.mkdir()
  archive = cache / cifar10.ARCHIVE_NAME
  archive.write_bytes(b"not a tar.gz at all")
  sha256 = cifar_fixtures.sha256_of(b"not a tar.gz at all")
  with pytest.raises(data.DataError):
    cifar10.load_cifar10(None, str(cache), keras_cache_dir=str(tmp_path / "k"),
                         expected_sha256=sha256)
  assert archive.exists()  # Its checksum is the expected one: keep it.
  with pytest.raises(data.DataError):
    cifar10.load_cifar10(None, str(cache), keras_cache_dir=str(tmp_path / "k"),
                         expected_sha256="0" * 64)
  assert not archive.exists()  # A failed checksum condemns it.


# 3 -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["same", "model_inside", "data_inside"])
def test_3_data_dir_and_model_dir_may_not_overlap(tmp_path, layout):
  images = tmp_path / "images"
  image_fixtures.write_image_folder(images, per_class=2)
  model_dir = {"same": images, "model_inside": images / "run",
               "data_inside": tmp_path}[layout]
  data_dir = images
  before = cli_fixtures.snapshot(str(tmp_path))
  code, _, stderr = _run(train, "--epochs=1", "--batch_size=4",
                         f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                         f"--cache_dir={tmp_path / 'cache'}")
  assert code == 2, stderr
  assert "inside" in _one_error_line(stderr) or "same" in stderr
  assert cli_fixtures.snapshot(str(tmp_path)) == before


# 4 -------------------------------------------------------------------------


def test_4_v1_leaves_a_v2_runs_files_alone(tiny_run, tmp_path):
  model_dir = _copy_run(tiny_run, tmp_path)
  before = cli_fixtures.snapshot(str(model_dir))
  code, _, stderr = _run(train, *TINY, "--api=v1", "--synthetic_test_size=8",
                         f"--model_dir={model_dir}")
  assert code == 1, stderr
  assert "--api=v2" in _one_error_line(stderr)
  assert cli_fixtures.snapshot(str(model_dir)) == before


def test_4_v1_takes_the_lock(tmp_path):
  model_dir = tmp_path / "v1"
  with run_dir.RunLock(str(model_dir)):
    code, _, stderr = _run(train, *TINY, "--api=v1",
                           f"--model_dir={model_dir}")
  assert code == 1
  assert "Another process" in _one_error_line(stderr)
  assert sorted(os.listdir(model_dir)) == [".lock"]


# 5 -------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "no_key",
                                    "wrong_shape"])
def test_5_a_damaged_image_cache_is_decoded_again(tmp_path, damage):
  images = tmp_path / "images"
  image_fixtures.write_image_folder(images, per_class=2)
  cache = tmp_path / "cache"
  expected = image_folder.load(str(images), cache_dir=str(cache))
  (cache_file,) = (cache / image_folder.CACHE_SUBDIR).iterdir()
  contents = cache_file.read_bytes()
  if damage == "truncated":
    cache_file.write_bytes(contents[:len(contents) // 2])
  elif damage == "garbage":
    cache_file.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
  elif damage == "empty":
    cache_file.write_bytes(b"")
  elif damage == "no_key":
    with open(cache_file, "wb") as f:
      np.savez(f, other=np.zeros(3))
  else:
    with open(cache_file, "wb") as f:
      np.savez(f, images=np.zeros((3, 2), np.float32))
  again = image_folder.load(str(images), cache_dir=str(cache))
  np.testing.assert_array_equal(again.train_images, expected.train_images)


# 6 -------------------------------------------------------------------------


def test_6_a_failed_run_file_write_is_one_line(tmp_path, monkeypatch):
  from tf_raw.run_folder import run_files  # pylint: disable=g-import-not-at-top

  def no_space(model_dir, flag_lines):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                  os.path.join(model_dir, "flags.txt"))
  monkeypatch.setattr(run_files, "write_flags", no_space)
  code, _, stderr = _run(train, *TINY, f"--model_dir={tmp_path / 'run'}")
  assert code == 1
  assert "No space left on device" in _one_error_line(stderr)


def test_6_a_failed_tensorboard_writer_is_one_line(tmp_path):
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  (model_dir / "train").write_text("a file where TensorBoard wants a folder")
  code, _, stderr = _run(train, *TINY, f"--model_dir={model_dir}")
  assert code == 1, stderr
  line = _one_error_line(stderr)
  assert "train" in line


# 7 -------------------------------------------------------------------------


def _two_checkpoints(tiny_run, tmp_path):
  model_dir = _copy_run(tiny_run, tmp_path)
  code, stdout, stderr = _run(train, *TINY, "--epochs=2",
                              f"--model_dir={model_dir}")
  assert code == 0, stdout + stderr
  return model_dir


@pytest.mark.parametrize("damage", ["no_index", "garbage_state",
                                    "truncated_index", "truncated_data"])
def test_7_export_and_predict_fall_back_past_damage(tiny_run, tmp_path,
                                                    damage):
  model_dir = _two_checkpoints(tiny_run, tmp_path)
  newest = model_dir / "ckpt-4"
  if damage == "no_index":
    os.remove(f"{newest}.index")
  elif damage == "garbage_state":
    (model_dir / "checkpoint").write_text("garbage {{{")
    os.remove(f"{newest}.index")
  elif damage == "truncated_index":
    path = f"{newest}.index"
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  else:
    path = f"{newest}.data-00000-of-00001"
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  code, stdout, stderr = _run(export, f"--model_dir={model_dir}",
                              f"--export_dir={tmp_path / 'export'}")
  assert code == 0, stdout + stderr
  assert "ckpt-2" in stdout + stderr
  image = tmp_path / "a.png"
  image_fixtures.write_image(str(image), np.zeros((32, 32, 3), np.uint8))
  code, stdout, stderr = _run(predict, f"--model_dir={model_dir}",
                              f"--image={image}")
  assert code == 0, stdout + stderr
  assert stdout.startswith(f"{image}: ")


# 8 -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--learning_rate=1e30", "--tolerance=nan",
                                  "--seed=9223372036854775808",
                                  "--synthetic_train_size=1e9",
                                  "--tolerance=inf"])
def test_8_compare_refuses_nan_and_out_of_range_flags(flag):
  # A subprocess: compare's flags clash with train's in one process.
  result = cli_fixtures.run_train(command=[
      sys.executable, "-m", "tf_raw.tf1.compare", "--steps=2",
      "--synthetic_train_size=64", "--synthetic_test_size=16",
      "--batch_size=16", flag])
  code, stdout, stderr = result.returncode, result.stdout, result.stderr
  assert code in (1, 2), stdout + stderr
  _one_error_line(stderr)
  assert "bit-identical" not in stdout
  assert "agree at all" not in stdout


# 9 -------------------------------------------------------------------------


def test_9_a_tilde_model_dir_is_the_home_folder(tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.chdir(tmp_path)
  code, stdout, stderr = _run(train, *TINY, "--model_dir=~/x")
  assert code == 0, stdout + stderr
  assert (tmp_path / "home" / "x" / "checkpoint").exists()
  assert not (tmp_path / "~").exists()


# 10 ------------------------------------------------------------------------


_HAND_EDITED_LINES = [b"[]", b"null", b'"text"', b'{"step": "8"}',
                      b"\xff\xfe not utf-8", b"3", b'{"step": true}',
                      b'{"step": 1e400}', b"{", b'{"step": 1.0}']


@pytest.mark.parametrize("line", _HAND_EDITED_LINES)
def test_10_a_hand_edited_metrics_line_is_no_record(tmp_path, line):
  run_dir.append_metric(str(tmp_path), {"step": 2, "accuracy": 0.5})
  with open(tmp_path / "metrics.jsonl", "ab") as f:
    f.write(line + b"\n")
  assert run_dir.read_metrics(str(tmp_path)) == [{"step": 2, "accuracy": 0.5}]
  assert run_dir.keep_metrics_up_to(str(tmp_path), 2) == 0
  assert run_dir.read_metrics(str(tmp_path)) == [{"step": 2, "accuracy": 0.5}]
  assert (tmp_path / "metrics.jsonl").read_bytes().count(b"\n") == 1


def test_10_a_run_with_hand_edited_metrics_restarts(tiny_run, tmp_path):
  model_dir = _copy_run(tiny_run, tmp_path)
  with open(model_dir / "metrics.jsonl", "ab") as f:
    f.write(b"\n".join(_HAND_EDITED_LINES) + b"\n")
  code, stdout, stderr = _run(train, *TINY, "--epochs=2",
                              f"--model_dir={model_dir}")
  assert code == 0, stdout + stderr
  steps = [r["step"] for r in run_dir.read_metrics(str(model_dir))]
  assert steps == [2, 4]


# 11 ------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [3, 12])
def test_11_v1_refuses_other_than_10_classes(tmp_path, num_classes):
  images = tmp_path / "images"
  for label in range(num_classes):
    for index in range(2):
      image_fixtures.write_image(
          str(images / "train" / f"c{label:02d}" / f"{index}.png"),
          np.full((32, 32, 3), label, np.uint8))
  before = cli_fixtures.snapshot(str(tmp_path))
  code, _, stderr = _run(train, "--api=v1", "--epochs=1", "--batch_size=4",
                         f"--data_dir={images}", "--validation_split=0.5",
                         f"--model_dir={tmp_path / 'run'}",
                         f"--cache_dir={tmp_path / 'cache'}")
  assert code == 1, stderr
  assert "10 classes" in _one_error_line(stderr)
  after = cli_fixtures.snapshot(str(tmp_path))
  assert {k: v for k, v in after.items() if not k.startswith("cache")} == {
      k: v for k, v in before.items() if not k.startswith("cache")}


def test_11_v1_does_not_call_validation_split_ignored():
  from tf_raw.tf1 import train_v1  # pylint: disable=g-import-not-at-top
  assert "validation_split" not in train_v1.ignored_flags(
      config_lib.TrainConfig())


# 12 ------------------------------------------------------------------------


def test_12_export_dir_below_a_file_is_one_line(tiny_run, tmp_path):
  (tmp_path / "file").write_text("x")
  code, _, stderr = _run(export, f"--model_dir={tiny_run}",
                         f"--export_dir={tmp_path / 'file' / 'export'}")
  assert code == 1, stderr
  assert "file" in _one_error_line(stderr)


@pytest.mark.parametrize("kind", ["garbage_pb", "no_class_names",
                                  "no_signature"])
def test_12_predict_on_a_foreign_saved_model_is_one_line(tmp_path, kind):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  saved = tmp_path / "saved"
  if kind == "garbage_pb":
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x00garbage" * 10)
  else:
    module = tf.Module()
    module.v = tf.Variable(1.0)
    signatures = None
    if kind == "no_class_names":
      module.f = tf.function(lambda images: {"p": tf.cast(images, tf.float32)},
                             input_signature=[tf.TensorSpec(
                                 [None, 32, 32, 3], tf.uint8)])
      signatures = {"serving_default": module.f.get_concrete_function()}
    tf.saved_model.save(module, str(saved), signatures=signatures)
  image = tmp_path / "a.png"
  image_fixtures.write_image(str(image), np.zeros((32, 32, 3), np.uint8))
  code, _, stderr = _run(predict, f"--saved_model={saved}", f"--image={image}")
  assert code == 1, stderr
  assert str(saved) in _one_error_line(stderr)


def test_12_a_read_only_cache_with_an_archive_data_dir_is_one_line(tmp_path):
  archive, _ = cifar_fixtures.write_cifar_archive(str(tmp_path / "mine"))
  cache = tmp_path / "cache"
  cache.mkdir()
  cache.chmod(0o555)
  command = cli_fixtures.permission_bound_command(cli_fixtures.train_command(
      "--epochs=1", f"--data_dir={archive}", f"--cache_dir={cache}",
      f"--model_dir={tmp_path / 'run'}"))
  if command is None:
    pytest.skip("root without setpriv: a read-only folder cannot bind")
  result = cli_fixtures.run_train(command=command)
  cache.chmod(0o755)
  assert result.returncode == 1, result.stderr
  assert str(cache) in _one_error_line(result.stderr)


# 13 ------------------------------------------------------------------------


def _slow_body_route():
  return cifar_fixtures.Route(body=b"x" * 4096, content_length=10 << 20,
                              stall_s=300)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143),
                                            (signal.SIGINT, 130)])
def test_13_an_interrupted_download_leaves_no_part_file(tmp_path, signum,
                                                        status, monkeypatch):
  cache = tmp_path / "cache"
  monkeypatch.setenv("HOME", str(tmp_path / "home"))  # No Keras cache.
  with cifar_fixtures.loopback_server({"/c.tar.gz": _slow_body_route()}) as (
      server):
    process = subprocess.Popen(
        cli_fixtures.train_command(
            f"--data_url={server.url('/c.tar.gz')}", f"--cache_dir={cache}",
            f"--model_dir={tmp_path / 'run'}", "--epochs=1"),
        cwd=cli_fixtures.REPO_ROOT, env=cli_fixtures._env(),  # pylint: disable=protected-access
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = cache / (cifar10.ARCHIVE_NAME + ".part")
    deadline = time.monotonic() + 300
    while not part.exists() and time.monotonic() < deadline:
      time.sleep(0.02)
    assert part.exists(), process.communicate()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
  assert process.returncode == status, stderr
  _one_error_line(stderr)
  assert cifar_fixtures.leftover_files(str(tmp_path)) == []


# 14 ------------------------------------------------------------------------


def test_14_a_non_utf8_flagfile_is_a_usage_error(tmp_path):
  flagfile = tmp_path / "flags.txt"
  flagfile.write_bytes(b"--epochs=\xff\n")
  code, _, stderr = _run(train, f"--flagfile={flagfile}")
  assert code == 2
  _one_error_line(stderr)


def test_14_an_unparsable_data_url_is_a_usage_error():
  code, _, stderr = _run(train, "--data_url=http://[::1/x")
  assert code == 2
  assert "--data_url" in _one_error_line(stderr)


@pytest.mark.parametrize("names", [[b"\xff\xfe"] + [b"a%d" % i for i in range(9)],
                                   [b""] + [b"a%d" % i for i in range(9)]])
def test_14_a_bad_class_name_in_batches_meta_is_a_format_error(tmp_path,
                                                               names):
  path = tmp_path / "batches.meta"
  path.write_bytes(cifar_fixtures.py2_meta_pickle(names))
  with pytest.raises(data.FormatError):
    data.read_meta(str(path))



@pytest.mark.parametrize("where", ["class", "file"])
def test_14_non_utf8_names_in_an_image_folder(tmp_path, where):
  images = tmp_path / "images"
  image_fixtures.write_image_folder(images, per_class=2, with_test=False)
  train_folder = os.fsencode(str(images / "train"))
  if where == "class":
    os.rename(os.path.join(train_folder, b"cat"),
              os.path.join(train_folder, b"c\xffat"))
  else:
    os.rename(os.path.join(train_folder, b"cat", b"0.png"),
              os.path.join(train_folder, b"cat", b"\xff.png"))
  config = config_lib.TrainConfig(data_dir=str(images),
                                  cache_dir=str(tmp_path / "cache"),
                                  validation_split=0.5)
  try:
    dataset = sources.load(config)
  except data.DataError as error:
    assert "\n" not in str(error) and where == "class"
  else:
    assert where == "file" and len(dataset.train_labels) > 0


@pytest.mark.parametrize("contents", ['{"identity": []}', '{"identity": 3}',
                                      "[]", '"x"', '{"identity": null}'])
def test_14_a_malformed_run_config_is_one_line(tiny_run, tmp_path, contents):
  model_dir = _copy_run(tiny_run, tmp_path)
  (model_dir / "run_config.json").write_text(contents)
  code, _, stderr = _run(train, *TINY, f"--model_dir={model_dir}")
  assert code == 1
  assert "run_config.json" in _one_error_line(stderr)


def test_14_metrics_jsonl_that_is_a_folder_is_one_line(tiny_run, tmp_path):
  model_dir = _copy_run(tiny_run, tmp_path)
  os.remove(model_dir / "metrics.jsonl")
  (model_dir / "metrics.jsonl").mkdir()
  code, _, stderr = _run(train, *TINY, "--epochs=2", f"--model_dir={model_dir}")
  assert code == 1
  assert "metrics.jsonl" in _one_error_line(stderr)


def test_14_ctrl_c_at_start_up_is_one_line(tmp_path):
  # SIGINT as soon as the interpreter runs: during the imports.
  process = subprocess.Popen(
      cli_fixtures.train_command("--dataset=synthetic",
                                 f"--model_dir={tmp_path / 'r'}"),
      cwd=cli_fixtures.REPO_ROOT, env=cli_fixtures._env(),  # pylint: disable=protected-access
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  time.sleep(0.3)
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 130, stderr
  assert "Traceback" not in stderr, stderr


# 15 ------------------------------------------------------------------------


def test_15_epochs_0_on_a_new_folder(tmp_path):
  code, stdout, stderr = _run(train, *TINY, "--epochs=0",
                              f"--model_dir={tmp_path / 'new'}")
  assert code == 0, stderr
  assert "finished" not in stdout
  assert not (tmp_path / "new").exists()


def test_15_fewer_epochs_than_the_run_has(tiny_run, tmp_path):
  model_dir = _two_checkpoints(tiny_run, tmp_path)
  code, stdout, _ = _run(train, *TINY, "--epochs=1",
                         f"--model_dir={model_dir}")
  assert code == 0
  assert "run of 2 epochs" in stdout


def test_15_file_urls_are_refused_by_the_flag():
  code, _, stderr = _run(train, "--data_url=file:///tmp/c.tar.gz")
  assert code == 2
  assert "http" in _one_error_line(stderr)


def test_15_a_broken_link_in_a_class_folder(tmp_path):
  images = tmp_path / "images"
  image_fixtures.write_image_folder(images, per_class=2)
  os.symlink(tmp_path / "nowhere.png", images / "train" / "cat" / "link.png")
  with pytest.raises(data.DataError) as raised:
    image_folder.load(str(images), cache_dir=None)
  assert "broken link" in str(raised.value)
  assert "folder" not in str(raised.value).split(";")[0]


def test_15_an_unreadable_image_says_so(tmp_path, monkeypatch):
  images = tmp_path / "images"
  image_fixtures.write_image_folder(images, per_class=2)
  bad = str(images / "train" / "cat" / "0.png")
  with open(bad, "wb") as f:
    f.write(b"not an image")  # As root, only open() can be made to refuse.
  real_open = open

  def deny(path, *args, **kwargs):
    if os.fspath(path) in (bad, os.fsencode(bad)):
      raise PermissionError(errno.EACCES, "Permission denied", bad)
    return real_open(path, *args, **kwargs)
  monkeypatch.setattr("builtins.open", deny)
  with pytest.raises(data.DataError) as raised:
    image_folder.load(str(images), cache_dir=None)
  assert "Permission denied" in str(raised.value)
  assert "not a readable image" not in str(raised.value)


def test_15_a_read_only_metrics_file_does_not_blame_the_disk(tmp_path,
                                                             monkeypatch):
  real_open = os.open

  def read_only(path, flags, *args):
    if str(path).endswith("metrics.jsonl"):
      raise PermissionError(errno.EACCES, "Permission denied", path)
    return real_open(path, flags, *args)
  monkeypatch.setattr(os, "open", read_only)
  with pytest.raises(run_dir.RunDirError) as raised:
    run_dir.append_metric(str(tmp_path), {"step": 1})
  assert "disk space" not in str(raised.value)


def test_15_v1_with_no_epochs_prints_no_final_none(tmp_path):
  code, stdout, stderr = _run(train, *TINY, "--api=v1", "--epochs=0",
                              f"--model_dir={tmp_path / 'v1'}")
  assert code == 0, stderr
  assert "None" not in stdout


def test_15_metrics_hold_null_not_nan(tmp_path):
  run_dir.append_metric(str(tmp_path), {"step": 1, "per_class_accuracy": {
      "a": float("nan"), "b": 0.5}})
  text = (tmp_path / "metrics.jsonl").read_text()
  assert "NaN" not in text
  assert json.loads(text)["per_class_accuracy"] == {"a": None, "b": 0.5}


def test_15_export_prints_no_absl_info_lines(tiny_run, tmp_path):
  # A subprocess: absl's logging reaches stderr only under app.run.
  result = cli_fixtures.run_train(command=[
      sys.executable, "-m", "tf_raw.tools.export", f"--model_dir={tiny_run}",
      f"--export_dir={tmp_path / 'e'}"])
  assert result.returncode == 0, result.stderr
  assert cli_fixtures.error_lines(result.stderr) == [], result.stderr
